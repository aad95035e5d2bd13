"""Render :class:`~serving.modelspec.ModelSpec` objects into Triton model repositories.

Configs are built as Triton's own protobuf (``model_config_pb2`` from tritonclient), so a
misspelt field or enum fails here, not at server start. The same spec renders for two
targets:

* ``cpu``: the local server from the ``nvidia-pytriton`` wheel, which has no ONNX Runtime
  backend, so ONNX models run in ``ensembles/python_models/onnx_runner.py`` (a Python-backend
  model holding an ``onnxruntime.InferenceSession``);
* ``gpu``: the official ``tritonserver:24.10-py3`` container, where ONNX models use the
  native ``onnxruntime`` backend with the TensorRT execution accelerator (FP16).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from serving.modelspec import ModelSpec, Target, TensorSpec
from serving.paths import ARTIFACTS_DIR, PYTHON_MODELS_DIR

ONNX_RUNNER_SOURCE = "onnx_runner.py"
ONNX_FILE_NAME = "model.onnx"

# The stub of the local server embeds the system libpython, which ignores PYTHONPATH; the
# launcher puts the venv and the checkout there, and this header adds them to ``sys.path``.
# In a container with the project installed, PYTHONPATH is unset and the header does nothing.
PYTHONPATH_HEADER = (
    "import os as _os, sys as _sys  # added by serving.render\n"
    "_sys.path[:0] = [_p for _p in _os.environ.get('PYTHONPATH', '').split(_os.pathsep)"
    " if _p and _p not in _sys.path]\n"
)


class SpecError(ValueError):
    """A model spec that Triton would reject or that cannot work as an ensemble step."""


def _tensor(tensor: TensorSpec, cls: type) -> object:
    try:
        data_type = mc.DataType.Value(tensor.data_type)
    except ValueError as exc:
        raise SpecError(f"tensor {tensor.name!r}: unknown data type {tensor.data_type!r}") from exc
    message = cls(name=tensor.name, data_type=data_type, dims=list(tensor.dims))
    if tensor.optional:
        message.optional = True
    return message


def _warmup(spec: ModelSpec, config: mc.ModelConfig) -> None:
    for warm in spec.warmup:
        item = config.model_warmup.add(name=warm.name, batch_size=warm.batch_size)
        for name, data in warm.inputs.items():
            entry = item.inputs[name]
            entry.data_type = mc.DataType.Value(data.data_type)
            entry.dims.extend(data.dims)
            if data.source == "zero":
                entry.zero_data = True
            elif data.source == "random":
                entry.random_data = True
            else:
                if data.file is None:
                    raise SpecError(f"{spec.name}: warm-up input {name!r} needs a file")
                entry.input_data_file = data.file.name


def build_config(spec: ModelSpec, target: Target) -> mc.ModelConfig:
    """Return the ``ModelConfig`` protobuf for ``spec`` on ``target``."""
    config = mc.ModelConfig(name=spec.name, max_batch_size=spec.max_batch_size)
    config.input.extend(_tensor(t, mc.ModelInput) for t in spec.inputs)
    config.output.extend(_tensor(t, mc.ModelOutput) for t in spec.outputs)
    if spec.dynamic_batching is not None:
        if spec.max_batch_size <= 0:
            raise SpecError(f"{spec.name}: dynamic batching needs max_batch_size > 0")
        batching = config.dynamic_batching
        batching.SetInParent()  # present even when every setting is the default (delay 0)
        batching.preferred_batch_size.extend(spec.dynamic_batching.preferred_batch_sizes)
        batching.max_queue_delay_microseconds = spec.dynamic_batching.max_queue_delay_us
    for key, value in spec.parameters.items():
        config.parameters[key].string_value = str(value)

    if spec.kind == "ensemble":
        config.platform = "ensemble"
        for step in spec.steps:
            config.ensemble_scheduling.step.add(
                model_name=step.model,
                model_version=-1,
                input_map=step.input_map,
                output_map=step.output_map,
            )
        return config

    instances = spec.instances.cpu if target == "cpu" else spec.instances.gpu
    if spec.kind == "python" or (spec.kind == "onnx" and target == "cpu"):
        config.backend = "python"
        config.instance_group.add(count=instances, kind=mc.ModelInstanceGroup.KIND_CPU)
        if spec.kind == "onnx":
            config.parameters["ONNX_FILE"].string_value = ONNX_FILE_NAME
            config.parameters["ORT_INTRA_OP_THREADS"].string_value = str(spec.ort.intra_op_threads)
            config.parameters["ORT_INTER_OP_THREADS"].string_value = str(spec.ort.inter_op_threads)
    else:  # onnx on the GPU container
        config.backend = "onnxruntime"
        config.default_model_filename = ONNX_FILE_NAME
        config.instance_group.add(count=instances, kind=mc.ModelInstanceGroup.KIND_GPU)
        if spec.ort.intra_op_threads:
            config.parameters["intra_op_thread_count"].string_value = str(spec.ort.intra_op_threads)
        if spec.ort.inter_op_threads:
            config.parameters["inter_op_thread_count"].string_value = str(spec.ort.inter_op_threads)
        if spec.gpu_tensorrt_fp16:
            accel = config.optimization.execution_accelerators.gpu_execution_accelerator.add(name="tensorrt")
            accel.parameters["precision_mode"] = "FP16"
            accel.parameters["max_workspace_size_bytes"] = str(1 << 30)
    _warmup(spec, config)
    return config


def validate(specs: Iterable[ModelSpec]) -> None:
    """Check what protobuf cannot: names are unique and every ensemble step fits its model."""
    by_name: dict[str, ModelSpec] = {}
    for spec in specs:
        if spec.name in by_name:
            raise SpecError(f"model name {spec.name!r} is defined twice")
        by_name[spec.name] = spec
    for spec in by_name.values():
        if spec.kind == "onnx" and not (spec.artifact and spec.exporter):
            raise SpecError(f"{spec.name}: an ONNX model needs an artifact and an exporter")
        if spec.kind == "python" and not spec.python_source:
            raise SpecError(f"{spec.name}: a Python model needs python_source")
        if spec.kind != "ensemble":
            continue
        produced = {t.name for t in spec.inputs}
        for step in spec.steps:
            if step.model not in by_name:
                raise SpecError(f"{spec.name}: step model {step.model!r} is not defined")
            step_model = by_name[step.model]
            if step_model.max_batch_size < spec.max_batch_size:
                raise SpecError(
                    f"{spec.name}: step {step.model!r} max_batch_size "
                    f"{step_model.max_batch_size} < ensemble's {spec.max_batch_size}"
                )
            step_inputs = {t.name for t in step_model.inputs}
            step_outputs = {t.name for t in step_model.outputs}
            for model_name, ens_name in step.input_map.items():
                if model_name not in step_inputs:
                    raise SpecError(f"{spec.name}: {step.model!r} has no input {model_name!r}")
                if ens_name not in produced:
                    raise SpecError(f"{spec.name}: tensor {ens_name!r} is used before it exists")
            missing = {t.name for t in step_model.inputs if not t.optional} - set(step.input_map)
            if missing:
                raise SpecError(f"{spec.name}: step {step.model!r} lacks inputs {sorted(missing)}")
            for model_name, ens_name in step.output_map.items():
                if model_name not in step_outputs:
                    raise SpecError(f"{spec.name}: {step.model!r} has no output {model_name!r}")
                produced.add(ens_name)
        unproduced = {t.name for t in spec.outputs} - produced
        if unproduced:
            raise SpecError(f"{spec.name}: outputs {sorted(unproduced)} are never produced")


def to_pbtxt(config: mc.ModelConfig) -> str:
    return text_format.MessageToString(config)


def write_model(
    spec: ModelSpec,
    target: Target,
    repository: Path,
    artifacts_dir: Path = ARTIFACTS_DIR,
) -> Path:
    """Write ``<repository>/<name>/config.pbtxt`` and version ``1`` files for ``spec``."""
    model_dir = repository / spec.name
    if model_dir.exists():
        shutil.rmtree(model_dir)
    version_dir = model_dir / "1"
    version_dir.mkdir(parents=True)
    (model_dir / "config.pbtxt").write_text(to_pbtxt(build_config(spec, target)))

    if spec.kind == "onnx":
        assert spec.artifact is not None
        source = artifacts_dir / spec.artifact
        if not source.is_file():
            raise FileNotFoundError(f"{spec.name}: ONNX artifact {source} is missing; export it first")
        _link_or_copy(source, version_dir / ONNX_FILE_NAME)
        if target == "cpu":
            _write_python_model(ONNX_RUNNER_SOURCE, version_dir)
    elif spec.kind == "python":
        assert spec.python_source is not None
        _write_python_model(spec.python_source, version_dir)
    for name, relative in spec.extra_files.items():
        source = artifacts_dir / relative
        if not source.is_file():
            raise FileNotFoundError(f"{spec.name}: extra file {source} is missing; export it first")
        _link_or_copy(source, version_dir / name)
    warm_files = [w.file for warm in spec.warmup for w in warm.inputs.values() if w.file]
    if warm_files:
        (model_dir / "warmup").mkdir()
        for path in warm_files:
            shutil.copy2(path, model_dir / "warmup" / path.name)
    return model_dir


def _write_python_model(source: str, version_dir: Path) -> None:
    """Copy a model source as ``model.py`` with the path header after any ``__future__`` import."""
    lines = (PYTHON_MODELS_DIR / source).read_text().splitlines(keepends=True)
    at = max((i + 1 for i, line in enumerate(lines) if line.startswith("from __future__")), default=0)
    lines.insert(at, PYTHONPATH_HEADER)
    (version_dir / "model.py").write_text("".join(lines))


def _link_or_copy(source: Path, dest: Path) -> None:
    """Hard-link large artifacts when possible: a repository build should not copy GBs."""
    try:
        dest.hardlink_to(source)
    except OSError:
        shutil.copy2(source, dest)
