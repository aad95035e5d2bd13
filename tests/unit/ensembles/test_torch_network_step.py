"""The gpu-local network step on the stand-in: the network its provenance describes, batched."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ensembles.steps.torch_network import DEVICE_ENV
from ensembles.testing import Logger, Request, TritonModelException, load_model
from export.resnet_torch import describe, model_from_provenance
from imaging.networks import RESNET152_PYTORCH
from imaging.specs import specs_for

NETWORK_SPEC = specs_for(RESNET152_PYTORCH)[1]


@pytest.fixture
def version_dir(tmp_path: Path) -> Path:
    """A version folder holding the provenance of a tiny (depth 14) random-weight ResNet."""
    provenance = describe(tmp_path / "artifacts", depth=14)
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / "provenance.json").write_text(provenance.read_text())
    return tmp_path / "1"


def test_the_step_runs_the_described_network_over_a_dynamic_batch(
    version_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DEVICE_ENV, "cpu")
    model = load_model(NETWORK_SPEC, version_dir, target="gpu-local")
    rng = np.random.default_rng(0)
    batches = [rng.standard_normal((n, 3, 224, 224)).astype(np.float32) for n in (1, 2)]
    responses = model.execute([Request(input=b) for b in batches])
    reference = model_from_provenance(json.loads((version_dir / "provenance.json").read_text()))
    for response, batch in zip(responses, batches, strict=True):
        assert response.error is None
        with torch.inference_mode():
            expected = reference(torch.from_numpy(batch)).numpy()
        assert response.outputs["logits"].dtype == np.float32
        np.testing.assert_allclose(response.outputs["logits"], expected, rtol=1e-4, atol=1e-4)
    assert any("RANDOM WEIGHTS" in line for level, line in Logger.lines if level == "warn")
    assert any("tiny stand-in" in line and "fp32" in line for _, line in Logger.lines)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_asked_for_cuda_without_one_the_step_refuses_to_load(
    version_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(DEVICE_ENV, raising=False)
    with pytest.raises(TritonModelException, match=f"no CUDA device.*{DEVICE_ENV}=cpu"):
        load_model(NETWORK_SPEC, version_dir, target="gpu-local")


def test_a_missing_provenance_refuses_to_load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(DEVICE_ENV, "cpu")
    (tmp_path / "1").mkdir()
    with pytest.raises(TritonModelException, match=r"provenance\.json is missing"):
        load_model(NETWORK_SPEC, tmp_path / "1", target="gpu-local")
