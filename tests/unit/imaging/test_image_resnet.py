"""The project's ResNet matches torchvision's layout, so torchvision checkpoints load."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from export.resnet_torch import build_model, model_from_provenance
from imaging.resnet import load_torchvision_weights, resnet

# torchvision.models.resnet50() / resnet152(): parameter counts and state_dict sizes
TORCHVISION = {50: (25_557_032, 320), 152: (60_192_808, 932)}


@pytest.mark.parametrize("depth", [50, 152])
def test_parameter_count_and_keys_match_torchvision(depth: int) -> None:
    model = resnet(depth)
    params, keys = TORCHVISION[depth]
    assert sum(p.numel() for p in model.parameters()) == params
    state = model.state_dict()
    assert len(state) == keys
    for name, shape in {
        "conv1.weight": (64, 3, 7, 7),
        "bn1.running_var": (64,),
        "layer1.0.downsample.0.weight": (256, 64, 1, 1),
        "layer1.0.downsample.1.num_batches_tracked": (),
        "layer2.0.conv2.weight": (128, 128, 3, 3),  # v1.5: stride on the 3x3
        "layer4.2.bn3.weight": (2048,),
        "fc.weight": (1000, 2048),
        "fc.bias": (1000,),
    }.items():
        assert tuple(state[name].shape) == shape, name
    assert model.layer2[0].conv2.stride == (2, 2) and model.layer2[0].conv1.stride == (1, 1)


def test_resnet152_stage_depths() -> None:
    model = resnet(152)
    assert [len(getattr(model, f"layer{i}")) for i in range(1, 5)] == [3, 8, 36, 3]


def test_a_torchvision_style_checkpoint_loads(tmp_path: Path) -> None:
    torch.manual_seed(1)
    source = resnet(50).eval()
    # DataParallel-style "module." prefixes and a {"state_dict": ...} wrapper are accepted
    wrapped = {"state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}}
    path = tmp_path / "resnet50-checkpoint.pth"
    torch.save(wrapped, path)
    target = resnet(50).eval()
    load_torchvision_weights(target, path)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(target(x), source(x))


def test_a_wrong_checkpoint_fails_clearly(tmp_path: Path) -> None:
    path = tmp_path / "resnet50.pth"
    torch.save(resnet(50).state_dict(), path)
    with pytest.raises(ValueError, match="not a torchvision ResNet-152 checkpoint"):
        load_torchvision_weights(resnet(152), path)
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(ValueError, match="expected a state_dict"):
        load_torchvision_weights(resnet(152), tmp_path / "list.pth")


def test_random_weights_are_reproducible_from_provenance() -> None:
    a = build_model(seed=3)
    b = model_from_provenance({"weights": "random", "seed": 3})
    assert not a.training and not b.training
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), name


def test_forward_gives_logits_per_image() -> None:
    model = resnet(50).eval()
    with torch.no_grad():
        out = model(torch.randn(2, 3, 96, 96))  # adaptive pooling: any size >= 32
    assert out.shape == (2, 1000)


def test_export_with_a_checkpoint_records_it_and_reloads_the_same_weights(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from export import resnet_torch
    from imaging.artifacts import is_random, read_provenance

    torch.manual_seed(7)
    checkpoint = tmp_path / "resnet152-user.pth"
    torch.save(resnet(152).state_dict(), checkpoint)
    written: dict[str, torch.nn.Module] = {}

    def fake_export(model: torch.nn.Module, destination: Path, *_: str) -> None:
        written["model"] = model  # the real ONNX export is the slow parity test's job
        destination.write_bytes(b"onnx")

    monkeypatch.setattr(resnet_torch, "export_onnx", fake_export)
    monkeypatch.setattr(resnet_torch, "_check", lambda *_: None)
    resnet_torch.main(["--weights", str(checkpoint), "--artifacts", str(tmp_path / "artifacts")])
    info = read_provenance(tmp_path / "artifacts", "resnet152_pytorch")
    assert not is_random(info)
    assert info["weights_path"] == str(checkpoint.resolve()) and len(info["sha256"]) == 64
    reloaded = resnet_torch.model_from_provenance(info)
    expected = torch.load(checkpoint, weights_only=True)
    for name, tensor in reloaded.state_dict().items():
        assert torch.equal(tensor, expected[name]), name
        assert torch.equal(written["model"].state_dict()[name], expected[name]), name


def test_export_without_weights_warns_loudly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from export import resnet_torch
    from imaging.artifacts import read_provenance

    monkeypatch.delenv(resnet_torch.WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(resnet_torch, "export_onnx", lambda _m, d, *_: d.write_bytes(b"onnx"))
    monkeypatch.setattr(resnet_torch, "_check", lambda *_: None)
    resnet_torch.export(tmp_path, seed=5)
    assert "RANDOM WEIGHTS" in caplog.text and "MEANINGLESS" in caplog.text
    info = read_provenance(tmp_path, "resnet152_pytorch")
    assert (info["weights"], info["seed"], info["outputs"]) == ("random", 5, "logits")
