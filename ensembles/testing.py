"""A stand-in for ``triton_python_backend_utils``, so that steps run outside Triton.

Steps run here exactly as Triton runs them: the spec is rendered to its config, the step class
named by the spec is wrapped by :func:`ensembles.runtime.python_model` and fed requests. The
unit tests of every step use it; the integration tests run the same steps in the real server.
"""

from __future__ import annotations

import importlib
import types
from pathlib import Path
from typing import ClassVar

import numpy as np
from google.protobuf.json_format import MessageToJson

from ensembles.runtime import python_model
from serving.modelspec import ModelSpec, Target
from serving.render import build_config


class TritonError:
    INVALID_ARG = "INVALID_ARG"
    INTERNAL = "INTERNAL"

    def __init__(self, message: str, code: str = "INTERNAL") -> None:
        self.message, self.code = message, code


class Tensor:
    def __init__(self, name: str, data: np.ndarray) -> None:
        self.name, self.data = name, data

    def as_numpy(self) -> np.ndarray:
        return self.data


class Response:
    def __init__(self, output_tensors: list | None = None, error: TritonError | None = None) -> None:
        self.outputs = {t.name: t.data for t in output_tensors or []}
        self.error = error


class Request:
    def __init__(self, **tensors: np.ndarray) -> None:
        self.tensors = tensors


class TritonModelException(Exception):
    pass


class Logger:
    lines: ClassVar[list[tuple[str, str]]] = []

    @classmethod
    def log_info(cls, message: str) -> None:
        cls.lines.append(("info", message))

    @classmethod
    def log_warn(cls, message: str) -> None:
        cls.lines.append(("warn", message))

    @classmethod
    def log_error(cls, message: str) -> None:
        cls.lines.append(("error", message))


def fake_pb_utils() -> types.ModuleType:
    module = types.ModuleType("triton_python_backend_utils")
    module.TritonError = TritonError
    module.Tensor = Tensor
    module.InferenceResponse = Response
    module.TritonModelException = TritonModelException
    module.Logger = Logger
    module.get_input_tensor_by_name = lambda request, name: (
        Tensor(name, request.tensors[name]) if name in request.tensors else None
    )
    return module


def step_class(spec: ModelSpec, target: Target = "cpu") -> type:
    from serving.render import python_step_for

    path = python_step_for(spec, target)
    if path is None:
        raise ValueError(f"{spec.name} runs on a native backend on {target}, not in a Python step")
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


def load_model(spec: ModelSpec, version_dir: Path | None = None, target: Target = "cpu") -> object:
    """The spec's step as Triton loads it (``TritonPythonModel``), initialised on ``version_dir``."""
    Logger.lines.clear()
    model = python_model(step_class(spec, target), fake_pb_utils())()
    config = MessageToJson(build_config(spec, target), preserving_proto_field_name=True)
    args = {"model_config": config, "model_name": spec.name, "model_version": "1"}
    if version_dir is not None:
        args["model_repository"] = str(version_dir.parent)
        args["model_version"] = version_dir.name
    model.initialize(args)
    return model


def texts(*values: bytes) -> np.ndarray:
    """A TYPE_STRING ``[n, 1]`` batch as the backend hands it over."""
    return np.array([[v] for v in values], dtype=object)
