"""Rendering model specs into Triton configs: both targets, parsed back by Triton's own protobuf."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from faq.specs import CLASSIFIER, MATCH, MODELS, POSTPROCESS, PREPROCESS
from serving.catalog import all_models
from serving.modelspec import TARGETS, DynamicBatching, EnsembleStep, ModelSpec, TensorSpec
from serving.render import (
    SpecError,
    build_config,
    shim,
    to_pbtxt,
    validate,
    write_model,
)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("spec", MODELS, ids=lambda s: s.name)
def test_faq_configs_parse_back_with_model_config_pb2(spec: ModelSpec, target: str) -> None:
    text = to_pbtxt(build_config(spec, target))
    parsed = text_format.Parse(text, mc.ModelConfig())
    assert parsed == build_config(spec, target)
    assert parsed.name == spec.name
    assert [i.name for i in parsed.input] == [t.name for t in spec.inputs]
    assert [o.name for o in parsed.output] == [t.name for t in spec.outputs]


def test_whole_catalog_validates_and_renders_for_both_targets() -> None:
    specs = all_models()
    validate(specs)
    for spec in specs:
        for target in spec.targets:
            text_format.Parse(to_pbtxt(build_config(spec, target)), mc.ModelConfig())


def test_classifier_is_python_runner_on_cpu_and_native_onnxruntime_on_gpu() -> None:
    cpu = build_config(CLASSIFIER, "cpu")
    assert cpu.backend == "python"
    assert cpu.parameters["ONNX_FILE"].string_value == "model.onnx"
    assert cpu.instance_group[0].kind == mc.ModelInstanceGroup.KIND_CPU

    gpu = build_config(CLASSIFIER, "gpu")
    assert gpu.backend == "onnxruntime"
    assert gpu.default_model_filename == "model.onnx"
    assert gpu.instance_group[0].kind == mc.ModelInstanceGroup.KIND_GPU
    assert "ONNX_FILE" not in gpu.parameters
    # string tokenization cannot run in TensorRT: no TensorRT accelerator for this model
    assert not gpu.optimization.execution_accelerators.gpu_execution_accelerator


def test_same_interface_and_batching_on_every_target() -> None:
    for spec in MODELS:
        cpu = build_config(spec, "cpu")
        for other in (build_config(spec, target) for target in TARGETS):
            assert cpu.input == other.input and cpu.output == other.output
            assert cpu.max_batch_size == other.max_batch_size
            assert cpu.dynamic_batching == other.dynamic_batching


def test_python_models_and_ensemble() -> None:
    for spec in (PREPROCESS, POSTPROCESS):
        config = build_config(spec, "gpu")
        assert config.backend == "python"
        assert config.HasField("dynamic_batching")
    ensemble = build_config(MATCH, "cpu")
    assert ensemble.platform == "ensemble"
    assert [s.model_name for s in ensemble.ensemble_scheduling.step] == [
        "faq_preprocess",
        "faq_classifier",
        "faq_postprocess",
    ]
    assert not ensemble.HasField("dynamic_batching")  # an ensemble has no batcher of its own


def _tiny(name: str, **kwargs) -> ModelSpec:
    defaults = dict(
        kind="python",
        inputs=(TensorSpec("X", "TYPE_FP32", (3,)),),
        outputs=(TensorSpec("Y", "TYPE_FP32", (3,)),),
        max_batch_size=8,
        python_step="ensembles.steps.faq:FaqPreprocess",
    )
    return ModelSpec(name=name, **{**defaults, **kwargs})


def test_validate_rejects_broken_specs() -> None:
    step = _tiny("step")
    with pytest.raises(SpecError, match="defined twice"):
        validate([step, step])
    with pytest.raises(SpecError, match="not defined"):
        validate([_ensemble(EnsembleStep("nope", {"X": "IN"}, {"Y": "OUT"}))])
    with pytest.raises(SpecError, match="never produced"):
        validate([step, _ensemble(EnsembleStep("step", {"X": "IN"}, {"Y": "other"}))])
    with pytest.raises(SpecError, match="used before it exists"):
        validate([step, _ensemble(EnsembleStep("step", {"X": "missing"}, {"Y": "OUT"}))])
    with pytest.raises(SpecError, match="max_batch_size"):
        small_step = _tiny("step", max_batch_size=2)
        validate([small_step, _ensemble(EnsembleStep("step", {"X": "IN"}, {"Y": "OUT"}))])
    with pytest.raises(SpecError, match="artifact"):
        validate([_tiny("onnx", kind="onnx", python_step=None)])
    with pytest.raises(SpecError, match="unknown data type"):
        build_config(_tiny("bad", inputs=(TensorSpec("X", "TYPE_FLOAT", (3,)),)), "cpu")
    with pytest.raises(SpecError, match="max_batch_size > 0"):
        build_config(_tiny("nob", max_batch_size=0, dynamic_batching=DynamicBatching()), "cpu")


def _ensemble(step: EnsembleStep) -> ModelSpec:
    return ModelSpec(
        name="ens",
        kind="ensemble",
        inputs=(TensorSpec("IN", "TYPE_FP32", (3,)),),
        outputs=(TensorSpec("OUT", "TYPE_FP32", (3,)),),
        max_batch_size=8,
        steps=(step,),
    )


def test_write_model_lays_out_version_folders(tmp_path: Path) -> None:
    artifacts = tmp_path / "artifacts"
    (artifacts / "faq").mkdir(parents=True)
    onnx_file = artifacts / CLASSIFIER.artifact
    onnx_file.parent.mkdir(parents=True, exist_ok=True)
    onnx_file.write_bytes(b"onnx")
    for relative in POSTPROCESS.extra_files.values():
        (artifacts / relative).write_text("{}")
    repo = tmp_path / "repo"
    for target in TARGETS:
        for spec in MODELS:
            write_model(spec, target, repo, artifacts)
        parsed = text_format.Parse((repo / "faq_classifier" / "config.pbtxt").read_text(), mc.ModelConfig())
        native = target in ("gpu", "cpu-container")  # the official container's onnxruntime backend
        assert parsed.backend == ("onnxruntime" if native else "python")
        assert (repo / "faq_classifier" / "1" / "model.onnx").read_bytes() == b"onnx"
        # the ONNX runner on the local server, on the CPU and on the GPU machine alike
        assert (repo / "faq_classifier" / "1" / "model.py").exists() == (not native)
        assert (repo / "faq_postprocess" / "1" / "faq_table.json").is_file()
        model_py = (repo / "faq_preprocess" / "1" / "model.py").read_text()
        assert model_py == shim(PREPROCESS.python_step)
        assert (repo / "faq_match" / "1").is_dir()


def test_missing_artifact_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="export it first"):
        write_model(CLASSIFIER, "cpu", tmp_path / "repo", tmp_path / "no-artifacts")


@pytest.mark.parametrize("target", TARGETS)
def test_committed_configs_are_what_rendering_gives(target: str) -> None:
    """deploy/configs/ is what Triton receives; a spec change must re-run `make configs`."""
    from serving.paths import CONFIGS_DIR
    from serving.render import committed_configs

    rendered = committed_configs(target, all_models(every_network=True))
    committed = set((CONFIGS_DIR / target).glob("*/config.pbtxt"))
    assert committed == set(rendered), "run `make configs`: models were added or removed"
    stale = [path.parent.name for path, text in rendered.items() if path.read_text() != text]
    assert not stale, f"run `make configs`: {stale} differ from their specs"


def test_cpu_container_runs_onnx_on_the_native_backend_with_cpu_instances() -> None:
    """The Kubernetes cpu overlay's repository: no Python stub for an ONNX model, no TensorRT."""
    from imaging.networks import RESNET152_PYTORCH
    from imaging.specs import specs_for

    for spec in (CLASSIFIER, specs_for(RESNET152_PYTORCH)[1]):
        config = build_config(spec, "cpu-container")
        assert config.backend == "onnxruntime" and config.default_model_filename == "model.onnx"
        assert config.instance_group[0].kind == mc.ModelInstanceGroup.KIND_CPU
        assert config.instance_group[0].count == spec.instances.cpu
        assert not config.optimization.execution_accelerators.gpu_execution_accelerator
    assert build_config(PREPROCESS, "cpu-container") == build_config(PREPROCESS, "cpu")
