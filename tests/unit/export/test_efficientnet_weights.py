"""EfficientNet-Lite0 without its weights package (the GPU machine) is the same network with
seeded random weights, and its provenance says so; with the package it is the pretrained one."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from export import efficientnet
from imaging.artifacts import RANDOM


def test_without_the_weights_package_the_network_is_random_seeded_and_labelled(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(efficientnet, "weights_installed", lambda: False)
    info = efficientnet.provenance()
    assert info["weights"] == RANDOM and "weights_path" not in info
    assert "RANDOM WEIGHTS" in caplog.text
    first, second = efficientnet.model_from_provenance(info), efficientnet.model_from_provenance(info)
    pixels = torch.rand(1, 3, 224, 224)
    with torch.inference_mode():
        assert torch.equal(first(pixels), second(pixels))  # the step and the check build the same one
        pretrained = efficientnet.build_model()
        assert not torch.allclose(first(pixels), pretrained(pixels))
    assert '"random"' in efficientnet.describe(tmp_path).read_text()


def test_with_the_weights_package_the_provenance_names_it() -> None:
    info = efficientnet.provenance()
    assert info["weights"] == "pretrained" and Path(info["weights_path"]).is_file()
