"""The single source of truth for every served model.

Each model is described once, as a :class:`ModelSpec`: its name, tensors, batching and
instance settings. ``serving.render`` turns a spec into a Triton ``config.pbtxt`` for a
target: ``cpu``, the local server (ONNX runs inside a Python-backend ONNX Runtime runner);
``gpu``, the official GPU container (the native ``onnxruntime`` backend with TensorRT); and
``gpu-local``, the local server on a GPU machine with no container (an image network runs as
its PyTorch original, in half precision, inside a Python-backend step that owns the GPU); and
``cpu-container``, the official container on CPU nodes (the native ``onnxruntime`` backend on CPU
instances, so the networks need no Python stub that could stall or die).
Nothing else in the project writes Triton configuration by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

Target = Literal["cpu", "gpu", "gpu-local", "cpu-container"]
ModelKind = Literal["onnx", "python", "ensemble"]

TARGETS: tuple[Target, ...] = ("cpu", "gpu", "gpu-local", "cpu-container")
NATIVE_ONNX: tuple[Target, ...] = ("gpu", "cpu-container")  # Triton's onnxruntime backend runs ONNX


@dataclass(frozen=True)
class TensorSpec:
    """One input or output tensor; ``dims`` exclude the batch dimension when batching is on."""

    name: str
    data_type: str  # Triton enum name, e.g. "TYPE_FP32", "TYPE_STRING"
    dims: tuple[int, ...]
    optional: bool = False


@dataclass(frozen=True)
class DynamicBatching:
    """Dynamic batcher settings; ``max_queue_delay_us`` trades latency for batch size.

    The queue policy sheds overload instead of queueing it forever: a request that would make
    the queue longer than ``max_queue_size``, or that waited ``queue_timeout_us``, is refused
    with UNAVAILABLE (HTTP 503), which the clients retry with backoff (0: no bound).
    """

    preferred_batch_sizes: tuple[int, ...] = ()
    max_queue_delay_us: int = 0
    max_queue_size: int = 0
    queue_timeout_us: int = 0


@dataclass(frozen=True)
class Instances:
    """Instance counts per target (CPU server vs GPU container)."""

    cpu: int = 1
    gpu: int = 1


@dataclass(frozen=True)
class EnsembleStep:
    """One step of an ensemble: maps the step model's tensor names to ensemble tensor names."""

    model: str
    input_map: dict[str, str]
    output_map: dict[str, str]


@dataclass(frozen=True)
class WarmupInput:
    """Warm-up data for one input: zeros, random values or the bytes of a file."""

    data_type: str
    dims: tuple[int, ...]
    source: Literal["zero", "random", "file"] = "zero"
    file: Path | None = None


@dataclass(frozen=True)
class Warmup:
    name: str
    batch_size: int
    inputs: dict[str, WarmupInput]


@dataclass(frozen=True)
class OrtSettings:
    """ONNX Runtime threading; 0 lets ONNX Runtime decide."""

    intra_op_threads: int = 0
    inter_op_threads: int = 0


@dataclass(frozen=True)
class GpuLocal:
    """What differs on the ``gpu-local`` target; everything left unset is the CPU rendering's.

    ``torch_builder`` (``"module:function"``, called with the provenance dict) makes an ONNX
    network run as its PyTorch original on the GPU, in ``precision``, without an ONNX export;
    ``describer`` (``"module:function"``, called with the artifacts folder) then writes the
    provenance file that the step and the post-processing read, instead of the ONNX exporter.
    """

    instances: int | None = None
    max_batch_size: int | None = None
    dynamic_batching: DynamicBatching | None = None
    torch_builder: str | None = None
    describer: str | None = None
    precision: Literal["fp16", "bf16", "fp32"] = "fp16"


@dataclass(frozen=True)
class ModelSpec:
    """Everything Triton needs to know about one model, for every target.

    ``artifact`` is the ONNX file (for ``kind="onnx"``) relative to the build folder, and
    ``exporter`` the ``module:function`` that writes it (called with the destination path).
    ``python_step`` is the ``"module:Class"`` of a :class:`ensembles.runtime.Step`; the rendered
    ``model.py`` is a shim that runs it (the ONNX step too, on the CPU target).
    ``extra_files`` maps a file name in the version folder to a path relative to the build
    folder (tables a Python model loads at start, for example).
    """

    name: str
    kind: ModelKind
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]
    max_batch_size: int = 0
    dynamic_batching: DynamicBatching | None = None
    instances: Instances = Instances()
    description: str = ""
    artifact: str | None = None
    exporter: str | None = None
    python_step: str | None = None
    extra_files: dict[str, str] = field(default_factory=dict)
    parameters: dict[str, str] = field(default_factory=dict)
    steps: tuple[EnsembleStep, ...] = ()
    ort: OrtSettings = OrtSettings()
    warmup: tuple[Warmup, ...] = ()
    gpu_tensorrt_fp16: bool = True
    gpu_local: GpuLocal = GpuLocal()
    targets: tuple[Target, ...] = TARGETS

    def runs_torch(self, target: Target) -> bool:
        """Whether this network runs as its PyTorch original on ``target`` (no ONNX file)."""
        return target == "gpu-local" and self.gpu_local.torch_builder is not None

    def exporter_for(self, target: Target) -> str | None:
        """What writes this model's build files for ``target``."""
        return (self.gpu_local.describer or self.exporter) if target == "gpu-local" else self.exporter

    def files_for(self, target: Target) -> list[str]:
        """The build files (relative to the artifacts folder) this model needs on ``target``."""
        onnx = [self.artifact] if self.artifact and not self.runs_torch(target) else []
        return [*onnx, *self.extra_files.values()]

    def tensor(self, name: str) -> TensorSpec:
        for tensor in (*self.inputs, *self.outputs):
            if tensor.name == name:
                return tensor
        raise KeyError(f"model {self.name!r} has no tensor {name!r}")
