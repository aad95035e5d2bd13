"""TensorRT plan building: the GPU variant's config and the trtexec call (no GPU needed)."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from export import tensorrt_plans as tp
from imaging.networks import NETWORKS


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_plan_config_is_a_tensorrt_plan_gpu_model(name: str) -> None:
    spec = tp.network_spec(NETWORKS[name])
    config = text_format.Parse(text_format.MessageToString(tp.plan_config(spec)), mc.ModelConfig())
    assert config.name == f"{name}_network"
    assert config.platform == "tensorrt_plan" and config.backend == ""
    assert config.default_model_filename == "model.plan"
    assert config.instance_group[0].kind == mc.ModelInstanceGroup.KIND_GPU
    assert not config.HasField("optimization")  # no ONNX Runtime accelerator on a plan
    assert config.max_batch_size == 8 and config.HasField("dynamic_batching")
    assert [i.name for i in config.input] == [NETWORKS[name].input_name]
    assert [o.name for o in config.output] == [NETWORKS[name].output_name]


def test_trtexec_command_has_a_dynamic_batch_profile_and_fp16() -> None:
    network = NETWORKS["resnet152_tensorflow"]
    command = tp.trtexec_command("trtexec", network, Path("m.onnx"), Path("m.plan"))
    assert "--minShapes=input:1x224x224x3" in command
    assert "--optShapes=input:4x224x224x3" in command
    assert "--maxShapes=input:8x224x224x3" in command
    assert "--fp16" in command and "--saveEngine=m.plan" in command
    fp32 = tp.trtexec_command("trtexec", NETWORKS["resnet152_pytorch"], Path("a"), Path("b"), fp16=False)
    assert "--fp16" not in fp32 and "--minShapes=input:1x3x224x224" in fp32


def test_write_plan_model_replaces_the_onnx_model(tmp_path: Path) -> None:
    network = NETWORKS["efficientnet_lite0"]
    artifacts = tmp_path / "artifacts"
    (artifacts / "imaging").mkdir(parents=True)
    (artifacts / "imaging" / "efficientnet_lite0.json").write_text("{}")
    plan = tmp_path / "engine.plan"
    plan.write_bytes(b"plan")
    stale = tmp_path / "repo" / "efficientnet_lite0_network" / "1"
    stale.mkdir(parents=True)
    (stale / "model.onnx").write_bytes(b"old")
    model_dir = tp.write_plan_model(tp.network_spec(network), plan, tmp_path / "repo", artifacts)
    assert (model_dir / "1" / "model.plan").read_bytes() == b"plan"
    assert not (model_dir / "1" / "model.onnx").exists()
    assert (model_dir / "1" / "provenance.json").is_file()
    assert 'platform: "tensorrt_plan"' in (model_dir / "config.pbtxt").read_text()


def test_without_gpu_or_tensorrt_the_script_says_what_is_missing(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(tp, "gpu_present", lambda: False)
    assert tp.main([]) == 2
    assert "no NVIDIA GPU visible" in caplog.text

    monkeypatch.setattr(tp, "gpu_present", lambda: True)
    monkeypatch.setattr(tp.shutil, "which", lambda _name: None)
    monkeypatch.setattr(tp, "TRTEXEC_CANDIDATES", ())
    monkeypatch.setitem(__import__("sys").modules, "tensorrt", None)  # import fails
    caplog.clear()
    assert tp.main([]) == 2
    assert "TensorRT not found" in caplog.text
