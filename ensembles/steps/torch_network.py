"""An image network run as its PyTorch original on the GPU, for the gpu-local target.

The local Triton server (the ``nvidia-pytriton`` wheel) has no ONNX Runtime or TensorRT
backend, and a GPU machine without Docker has no container that would have them. This step
builds the network from its provenance file with the project's own PyTorch code (``BUILDER``,
``module:function``), in ``PRECISION`` on ``DEVICE``, channels-last, and runs each dynamic batch
as one forward pass. The input arrives in FP32 and the scores leave in FP32, as the ONNX
network's do, so the ensemble around it is unchanged.

``TORCH_STEP_DEVICE=cpu`` in the server's environment moves it to the CPU in FP32: the same
config then loads on a machine without a GPU (the GPU script's test run). Asked for CUDA where
there is none, the step refuses to load instead of silently running on the CPU.
"""

from __future__ import annotations

import importlib
import json
import os
from typing import Any

import numpy as np

from ensembles.runtime import Arrays, ConfigError, Step, StepConfig
from imaging.artifacts import is_random, random_weights_banner

DEVICE_ENV = "TORCH_STEP_DEVICE"
PRECISIONS = ("fp16", "bf16", "fp32")


def resolve(reference: str) -> Any:
    """The function named ``"module:function"``."""
    module, _, name = reference.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"BUILDER {reference!r} cannot be loaded: {exc}") from exc


class TorchNetwork(Step):
    def __init__(self, config: StepConfig, log: object = None) -> None:
        super().__init__(config, log)
        import torch

        (self.input,), (self.output,) = config.tensors(inputs=1, outputs=1)
        self.device = torch.device(os.environ.get(DEVICE_ENV) or config.text("DEVICE", "cuda"))
        precision = config.text("PRECISION", "fp16") if self.device.type == "cuda" else "fp32"
        if precision not in PRECISIONS:
            raise ConfigError(f"PRECISION={precision!r} is not one of {PRECISIONS}")
        if self.device.type == "cuda" and not torch.cuda.is_available():
            raise ConfigError(f"no CUDA device for {config.model_name}; {DEVICE_ENV}=cpu runs it on the CPU")
        info = json.loads(config.file("PROVENANCE", "provenance.json").read_text())
        if is_random(info):
            self.log.log_warn(random_weights_banner(config.model_name))
        self.dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[precision]
        model = resolve(config.text("BUILDER"))(info)
        self.model = model.to(self.device, self.dtype, memory_format=torch.channels_last).eval()
        self.torch = torch
        self.staging = None
        if self.device.type == "cuda":
            # One pinned buffer for the largest batch, reused: pinning memory per batch costs more
            # than the copy. cuDNN's own heuristics pick the kernels (no autotuning per batch size).
            # Every batch size the dynamic batcher can form runs once here: the first pass at a new
            # size selects and loads its kernels, and on an H200 that stalled the step for seconds
            # under load, long enough for queued requests to expire (the first GPU run).
            dims = config.input_dims[self.input]
            self.staging = torch.empty((max(1, config.max_batch_size), *dims), pin_memory=True)
            for size in range(1, max(1, config.max_batch_size) + 1):
                self.compute({self.input: np.zeros((size, *dims), np.float32)})
        self.log.log_info(f"{config.model_name}: {info.get('note', 'network')} on {self.device}, {precision}")

    def compute(self, batch: Arrays) -> Arrays:
        torch = self.torch
        pixels = torch.from_numpy(np.ascontiguousarray(batch[self.input]))
        if self.staging is not None and len(pixels) <= len(self.staging):
            staged = self.staging[: len(pixels)]
            staged.copy_(pixels)
            pixels = staged.to(self.device, non_blocking=True)
        pixels = pixels.to(self.device, self.dtype).contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            scores = self.model(pixels)
        return {self.output: scores.float().cpu().numpy()}  # waits for the copy and the network
