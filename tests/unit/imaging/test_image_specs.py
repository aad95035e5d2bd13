"""The image specs render to valid Triton configs for the CPU server and the GPU container."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from imaging.networks import NETWORKS
from imaging.specs import MAX_BATCH_SIZE, MODELS, model_names, specs_for
from imaging.warmup import WARMUP_FILE, decode_string_elements
from serving.modelspec import TARGETS
from serving.render import build_config, to_pbtxt, validate, write_model

BY_NAME = {spec.name: spec for spec in MODELS}


def roundtrip(config: mc.ModelConfig) -> mc.ModelConfig:
    """Render to text and parse back with Triton's own schema (what the server does)."""
    return text_format.Parse(to_pbtxt(config), mc.ModelConfig())


def test_specs_validate_and_cover_the_three_ensembles() -> None:
    validate(MODELS)
    assert {"resnet152_pytorch", "resnet152_tensorflow", "efficientnet_lite0"} <= set(BY_NAME)
    assert len(MODELS) == 4 * len(NETWORKS)


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_ensemble_interface_is_the_issues(name: str) -> None:
    config = roundtrip(build_config(BY_NAME[name], "cpu"))
    assert config.platform == "ensemble"
    assert config.max_batch_size >= 8
    (image,) = config.input
    assert (image.name, image.data_type, list(image.dims)) == ("IMAGE", mc.TYPE_STRING, [1])
    outputs = {o.name: (o.data_type, list(o.dims)) for o in config.output}
    assert outputs == {
        "CLASS_ID": (mc.TYPE_INT64, [5]),
        "LABEL": (mc.TYPE_STRING, [5]),
        "SCORE": (mc.TYPE_FP32, [5]),
    }
    assert [s.model_name for s in config.ensemble_scheduling.step] == list(model_names(NETWORKS[name]))


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_every_step_batches_dynamically_and_warms_up(name: str) -> None:
    for step in model_names(NETWORKS[name]):
        config = roundtrip(build_config(BY_NAME[step], "cpu"))
        assert config.max_batch_size == MAX_BATCH_SIZE
        assert config.HasField("dynamic_batching"), step
        assert len(config.model_warmup) >= 1, step


def test_cpu_rendering_runs_onnx_in_the_python_runner_with_measured_threads() -> None:
    config = roundtrip(build_config(BY_NAME["resnet152_pytorch_network"], "cpu"))
    assert config.backend == "python"
    assert config.instance_group[0].kind == mc.ModelInstanceGroup.KIND_CPU
    assert config.parameters["ORT_INTRA_OP_THREADS"].string_value == "1"
    assert config.instance_group[0].count == 2
    assert list(config.dynamic_batching.preferred_batch_size) == [4, 8]
    assert sorted(w.batch_size for w in config.model_warmup) == [1, MAX_BATCH_SIZE]


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_gpu_rendering_uses_onnxruntime_with_tensorrt_fp16(name: str) -> None:
    pre, net, post = model_names(NETWORKS[name])
    config = roundtrip(build_config(BY_NAME[net], "gpu"))
    assert config.backend == "onnxruntime"
    assert config.default_model_filename == "model.onnx"
    assert config.instance_group[0].kind == mc.ModelInstanceGroup.KIND_GPU
    (accelerator,) = config.optimization.execution_accelerators.gpu_execution_accelerator
    assert accelerator.name == "tensorrt"
    assert accelerator.parameters["precision_mode"] == "FP16"
    assert "ONNX_FILE" not in config.parameters  # the CPU runner's parameters are not rendered
    network = NETWORKS[name]
    assert [list(i.dims) for i in config.input] == [list(network.input_dims)]
    # the Python steps stay on the CPU in the GPU container
    for step in (pre, post):
        step_config = roundtrip(build_config(BY_NAME[step], "gpu"))
        assert step_config.backend == "python"
        assert step_config.instance_group[0].kind == mc.ModelInstanceGroup.KIND_CPU


def test_postprocess_applies_softmax_only_to_logit_networks() -> None:
    for network in NETWORKS.values():
        spec = BY_NAME[f"{network.name}_postprocess"]
        assert spec.parameters["APPLY_SOFTMAX"] == ("true" if network.outputs_logits else "false")
    assert BY_NAME["resnet152_tensorflow_postprocess"].parameters["APPLY_SOFTMAX"] == "false"


def test_preprocess_parameters_name_a_known_recipe() -> None:
    from imaging.preprocess import CONFIGS

    for network in NETWORKS.values():
        spec = BY_NAME[f"{network.name}_preprocess"]
        assert CONFIGS[spec.parameters["PREPROCESS"]] == network.preprocess
        assert spec.outputs[0].dims == network.preprocess.shape


def _fake_artifacts(root: Path) -> Path:
    for network in NETWORKS.values():
        (root / "imaging").mkdir(parents=True, exist_ok=True)
        (root / "imaging" / f"{network.name}.onnx").write_bytes(b"onnx")
        (root / "imaging" / f"{network.name}.json").write_text(json.dumps({"weights": "random"}))
    return root


@pytest.mark.parametrize("target", TARGETS)
def test_written_repository_layout(tmp_path: Path, target: str) -> None:
    artifacts = _fake_artifacts(tmp_path / "artifacts")
    repository = tmp_path / "repo"
    for spec in specs_for(NETWORKS["efficientnet_lite0"]):
        write_model(spec, target, repository, artifacts)  # type: ignore[arg-type]
    pre = repository / "efficientnet_lite0_preprocess"
    assert "from ensembles.steps.imaging import ImagePreprocess" in (pre / "1" / "model.py").read_text()
    warm = pre / "warmup" / WARMUP_FILE.name
    assert warm.read_bytes() == WARMUP_FILE.read_bytes()
    net = repository / "efficientnet_lite0_network" / "1"
    assert (net / "model.onnx").is_file() == (target != "gpu-local")  # PyTorch there, no ONNX file
    assert (net / "model.py").exists() == (target not in ("gpu", "cpu-container"))
    if target == "gpu-local":
        assert "from ensembles.steps.torch_network import TorchNetwork" in (net / "model.py").read_text()
        assert json.loads((net / "provenance.json").read_text()) == {"weights": "random"}
    post = repository / "efficientnet_lite0_postprocess" / "1"
    assert json.loads((post / "provenance.json").read_text()) == {"weights": "random"}
    for model_dir in repository.iterdir():
        text_format.Parse((model_dir / "config.pbtxt").read_text(), mc.ModelConfig())


def test_warmup_file_is_one_valid_string_element() -> None:
    from imaging.preprocess import EFFICIENTNET_LITE, preprocess_bytes
    from imaging.warmup import warmup_jpeg

    (element,) = decode_string_elements(WARMUP_FILE.read_bytes())
    assert element[:2] == b"\xff\xd8"  # a JPEG
    assert preprocess_bytes(element, EFFICIENTNET_LITE).shape == (3, 224, 224)
    assert len(warmup_jpeg()) > 1000


def test_skip_tf_leaves_out_the_keras_ensemble(monkeypatch: pytest.MonkeyPatch) -> None:
    from imaging import specs

    monkeypatch.setenv("SKIP_TF", "1")
    assert "resnet152_tensorflow" not in {n.name for n in specs.enabled_networks()}
    monkeypatch.setenv("SKIP_TF", "0")
    assert "resnet152_tensorflow" in {n.name for n in specs.enabled_networks()}


def test_gpu_local_runs_pytorch_networks_on_the_gpu_and_leaves_keras_out() -> None:
    """The third target: the PyTorch original in half precision, batched for the GPU, the
    decoding spread over the cores; a network with no PyTorch original is not rendered there."""
    for network in NETWORKS.values():
        pre, net, post, ensemble = specs_for(network)
        if network.torch_module is None:
            assert all("gpu-local" not in spec.targets for spec in (pre, net, post, ensemble))
            continue
        config = build_config(net, "gpu-local")
        assert config.backend == "python" and config.max_batch_size == 64
        assert config.parameters["BUILDER"].string_value == f"{network.torch_module}:model_from_provenance"
        assert config.parameters["PRECISION"].string_value == "fp16"
        assert config.parameters["DEVICE"].string_value == "cuda"
        assert list(config.dynamic_batching.preferred_batch_size) == [32, 64]
        assert build_config(pre, "gpu-local").instance_group[0].count == 8
        assert build_config(ensemble, "gpu-local") == build_config(ensemble, "cpu")
        assert net.files_for("gpu-local") == [f"imaging/{network.name}.json"]
        describer = f"{network.torch_module}:describe"
        assert net.exporter_for("gpu-local") == post.exporter_for("gpu-local") == describer
