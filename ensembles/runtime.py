"""The runtime every Python-backend step of the stack runs on.

Triton's Python backend wants a ``TritonPythonModel`` class with ``initialize``/``execute``;
the plumbing around it (reading parameters, copying inputs out of shared memory, merging the
dynamic batch, slicing the answer back per request, turning exceptions into responses) is the
same for every step, so it lives here once and each step is a short :class:`Step` subclass:

* :meth:`Step.prepare` checks and transforms **one request's** inputs; a
  :class:`RequestError` there answers that request alone with INVALID_ARG and the bare reason;
* :meth:`Step.compute` runs **once over the whole dynamic batch** (requests concatenated along
  the batch dimension) and its outputs are sliced back, so each request gets exactly its rows;
* anything else that goes wrong answers the affected requests with INTERNAL and is logged.

Steps import nothing from Triton: they run in unit tests as they are, and the rendered
``model.py`` is a generated two-line shim that calls :func:`python_model`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

Arrays = dict[str, np.ndarray]


class RequestError(ValueError):
    """A request's input cannot be served; the message goes back to the client as it is."""


class ConfigError(RuntimeError):
    """The model's config or files do not fit the step: the model refuses to load."""


@dataclass(frozen=True)
class StepConfig:
    """What a step may know about itself, parsed once from the config Triton hands over."""

    model_name: str
    version_dir: Path
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    output_dims: dict[str, tuple[int, ...]] = field(default_factory=dict)
    parameters: dict[str, str] = field(default_factory=dict)
    batched: bool = True
    input_dims: dict[str, tuple[int, ...]] = field(default_factory=dict)
    max_batch_size: int = 0

    @classmethod
    def from_args(cls, args: dict[str, str]) -> StepConfig:
        """From the ``args`` of ``TritonPythonModel.initialize`` (the config comes as JSON)."""
        config = json.loads(args["model_config"])
        version_dir = Path(args.get("model_repository", ".")) / str(args.get("model_version", "1"))

        def dims(kind: str) -> dict[str, tuple[int, ...]]:
            return {t["name"]: tuple(int(d) for d in t.get("dims", [])) for t in config.get(kind, [])}

        return cls(
            model_name=args.get("model_name", config.get("name", "")),
            version_dir=version_dir,
            inputs=tuple(t["name"] for t in config.get("input", [])),
            outputs=tuple(t["name"] for t in config.get("output", [])),
            output_dims=dims("output"),
            parameters={k: v["string_value"] for k, v in config.get("parameters", {}).items()},
            batched=int(config.get("max_batch_size", 0)) > 0,
            input_dims=dims("input"),
            max_batch_size=int(config.get("max_batch_size", 0)),
        )

    def text(self, key: str, default: str | None = None) -> str:
        if key in self.parameters:
            return self.parameters[key]
        if default is None:
            raise ConfigError(f"{self.model_name}: parameter {key} is missing from config.pbtxt")
        return default

    def integer(self, key: str, default: int | None = None) -> int:
        raw = self.text(key, None if default is None else str(default))
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{self.model_name}: parameter {key}={raw!r} is not an integer") from None

    def flag(self, key: str, default: bool = False) -> bool:
        raw = self.text(key, "true" if default else "false").strip().lower()
        if raw not in ("true", "false"):
            raise ConfigError(f"{self.model_name}: parameter {key}={raw!r} is not true/false")
        return raw == "true"

    def file(self, key: str, default: str | None = None) -> Path:
        """A file in the version folder named by a parameter; it must exist."""
        path = self.version_dir / self.text(key, default)
        if not path.is_file():
            raise ConfigError(f"{self.model_name}: {path} is missing")
        return path

    def tensors(self, inputs: int, outputs: int) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """Input and output names in spec order, checked for count: steps never hard-code names,
        so a name changes in the spec alone (the config is rendered from it)."""
        if (len(self.inputs), len(self.outputs)) != (inputs, outputs):
            raise ConfigError(
                f"{self.model_name}: config has inputs {list(self.inputs)} and outputs "
                f"{list(self.outputs)}; this step takes {inputs} and gives {outputs}"
            )
        return self.inputs, self.outputs


class Step:
    """Base of every Python-backend step. Subclasses set up in ``__init__`` (after ``super``)."""

    def __init__(self, config: StepConfig, log: Any = None) -> None:
        self.config = config
        self.log = log or _StdLogger(config.model_name)

    def prepare(self, inputs: Arrays) -> Arrays:
        """One request's inputs, checked and transformed; raise :class:`RequestError` to refuse it."""
        return inputs

    def prepare_all(self, requests: list[Arrays]) -> list[Arrays | BaseException]:
        """:meth:`prepare` for each request of a dynamic batch; override to parallelise."""
        return [_attempt(self.prepare, inputs) for inputs in requests]

    def compute(self, batch: Arrays) -> Arrays:
        """The step's work over the whole batch; every output keeps the batch's row count."""
        return batch

    def close(self) -> None:
        """Release what the step holds (thread pools, sessions) when Triton unloads it."""


def run_batch(step: Step, requests: list[Arrays]) -> list[Arrays | BaseException]:
    """Answer a dynamic batch: per-request ``prepare``, one ``compute``, rows sliced back."""
    prepared = step.prepare_all(requests)
    good = [i for i, p in enumerate(prepared) if not isinstance(p, BaseException)]
    results: list[Arrays | BaseException] = list(prepared)
    if not good:
        return results
    if not step.config.batched:
        for i in good:
            results[i] = _attempt(step.compute, prepared[i])
        return results
    parts: list[Arrays] = [prepared[i] for i in good]  # type: ignore[misc]
    sizes = [len(next(iter(p.values()))) if p else 0 for p in parts]
    # The inputs were copied out of shared memory once, in ``execute``; a lone request is
    # computed on that copy as it is, several are joined into one batch.
    if len(parts) == 1:
        merged = parts[0]
    else:
        merged = {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
    try:
        outputs = step.compute(merged)
        total = sum(sizes)
        for name, value in outputs.items():
            if len(value) != total:
                raise RuntimeError(f"output {name} has {len(value)} rows for a batch of {total}")
    except BaseException as exc:
        for i in good:
            results[i] = exc
        return results
    start = 0
    for i, size in zip(good, sizes, strict=True):
        results[i] = {name: value[start : start + size] for name, value in outputs.items()}
        start += size
    return results


def _attempt(function: Any, inputs: Arrays) -> Arrays | BaseException:
    try:
        return function(inputs)
    except Exception as exc:
        return exc


class _StdLogger:
    """``pb_utils.Logger``'s three calls on the standard logging module, for use outside Triton."""

    def __init__(self, name: str) -> None:
        self._log = logging.getLogger(f"ensembles.{name}")

    def log_info(self, message: str) -> None:
        self._log.info(message)

    def log_warn(self, message: str) -> None:
        self._log.warning(message)

    def log_error(self, message: str) -> None:
        self._log.error(message)


def python_model(step_class: type[Step], pb_utils: ModuleType | None = None) -> type:
    """The ``TritonPythonModel`` class Triton loads, running ``step_class`` on this runtime.

    ``pb_utils`` is ``triton_python_backend_utils`` inside Triton, a stand-in in unit tests.
    """
    if pb_utils is None:
        import triton_python_backend_utils as pb_utils  # only exists inside the stub

    class TritonPythonModel:
        def initialize(self, args: dict[str, str]) -> None:
            config = StepConfig.from_args(args)
            try:
                self.step_instance = step_class(config, pb_utils.Logger)
            except ConfigError as exc:
                raise pb_utils.TritonModelException(str(exc)) from None

        def execute(self, requests: list) -> list:
            step = self.step_instance
            arrays = []
            for request in requests:
                inputs = {}
                for name in step.config.inputs:
                    tensor = pb_utils.get_input_tensor_by_name(request, name)
                    if tensor is not None:
                        inputs[name] = np.array(tensor.as_numpy(), copy=True)
                arrays.append(inputs)
            responses = []
            for result in run_batch(step, arrays):
                if isinstance(result, BaseException):
                    responses.append(pb_utils.InferenceResponse(error=_error(pb_utils, step, result)))
                    continue
                tensors = [
                    pb_utils.Tensor(name, np.ascontiguousarray(value)) for name, value in result.items()
                ]
                responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
            return responses

        def finalize(self) -> None:
            self.step_instance.close()

    TritonPythonModel.__name__ = TritonPythonModel.__qualname__ = "TritonPythonModel"
    return TritonPythonModel


def _error(pb_utils: ModuleType, step: Step, exc: BaseException) -> Any:
    """INVALID_ARG with the bare reason for a client's mistake; INTERNAL (and a log line) otherwise."""
    if isinstance(exc, RequestError):
        return pb_utils.TritonError(str(exc), pb_utils.TritonError.INVALID_ARG)
    step.log.log_error(f"{step.config.model_name}: {type(exc).__name__}: {exc}")
    return pb_utils.TritonError(
        f"{step.config.model_name} failed ({type(exc).__name__}: {exc})", pb_utils.TritonError.INTERNAL
    )
