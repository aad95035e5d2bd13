"""Features, ONNX export parity with scikit-learn, checksums, training manifest."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from batch_scoring import features
from batch_scoring.generate import GenSpec, generate_series
from batch_scoring.model import PRESETS, ChecksumMismatch, ModelConfig, OnnxModel, fit, sha256, to_onnx
from batch_scoring.train import summarize

# Same shape as conftest.SMALL (the session's trained store).
SMALL = GenSpec(devices=2, sensors=3, readings=720, seed=3)


def test_original_hyperparameters_are_kept_as_a_preset() -> None:
    orig = PRESETS["original"]
    assert (orig.features, orig.kernel, orig.gamma, orig.nu) == ("value", "rbf", 0.01, 0.0001)


def test_context_features_see_stuck_sensors_and_spikes() -> None:
    v = np.sin(np.arange(200) / 10.0) + np.random.default_rng(0).normal(0, 0.1, 200)
    v[100:130] = v[99]  # stuck
    v[50] += 5.0  # spike
    x = features.compute(v, "context")
    assert x.shape == (200, 3) and x.dtype == np.float32 and np.isfinite(x).all()
    assert np.allclose(x[:, 0], v.astype(np.float32))
    assert x[110:130, 2].max() < 1e-9  # no variation while stuck
    assert x[60:90, 2].min() > 0.0
    assert abs(x[50, 1]) > 4.0 and abs(x[50, 1]) > 5 * np.abs(x[10:49, 1]).max() / 2
    assert features.compute(v, "value").shape == (200, 1)
    with pytest.raises(ValueError):
        features.compute(v, "nope")


def test_features_are_causal() -> None:
    """A reading's features depend only on the past, so hourly increments score the same."""
    v = generate_series(SMALL, 0)["Value"].to_numpy()
    full = features.compute(v, "context")
    prefix = features.compute(v[:400], "context")
    np.testing.assert_array_equal(full[20:400], prefix[20:400])


@pytest.mark.parametrize("preset", ["default", "original"])
def test_onnx_matches_sklearn(preset: str) -> None:
    config = PRESETS[preset]
    df = generate_series(SMALL, 1)
    x = features.compute(df["Value"].to_numpy(), config.features)
    pipe = fit(x[:360], config)
    model = OnnxModel(to_onnx(pipe, x.shape[1], {"device": "D000", "sensor": "S01"}))
    pred, score = model.predict(x)
    ref_score = pipe.decision_function(x.astype(np.float64))
    ref_pred = (pipe.predict(x) == -1).astype(np.int8)
    # float32 inside ONNX Runtime's SVM kernel: scores agree to ~1e-5 of their scale.
    np.testing.assert_allclose(score, ref_score, rtol=1e-4, atol=1e-4 * np.abs(ref_score).max())
    near_boundary = np.abs(ref_score) < 1e-4 * np.abs(ref_score).max()
    assert (pred == ref_pred)[~near_boundary].all()
    assert pred.sum() > 0  # the test data has anomalies: a model flagging nothing proves little
    assert model.metadata == {"device": "D000", "sensor": "S01"}


def test_onnx_file_is_a_plain_graph_not_a_pickle() -> None:
    x = features.compute(generate_series(SMALL, 2)["Value"].to_numpy(), "context")
    data = to_onnx(fit(x, ModelConfig()), 3)
    graph = onnx.load_from_string(data)
    ops = {n.op_type for n in graph.graph.node}
    assert "OneClassSVM" not in ops and ({"Scaler", "SVMRegressor"} <= ops or "SVMRegressor" in ops)
    assert not data.startswith(b"\x80")  # pickle protocol marker


def test_checksum_mismatch_refuses_to_load() -> None:
    x = features.compute(generate_series(SMALL, 2)["Value"].to_numpy(), "context")
    data = to_onnx(fit(x, ModelConfig()), 3)
    OnnxModel(data, expected_sha256=sha256(data))
    with pytest.raises(ChecksumMismatch):
        OnnxModel(data, expected_sha256="0" * 64)


def test_manifest_describes_every_model(trained_root: Path) -> None:
    manifest = json.loads((trained_root / "models" / "manifest.json").read_text())
    assert len(manifest["models"]) == SMALL.series and not manifest["errors"]
    for key, entry in manifest["models"].items():
        device, sensor = key.split("/")
        assert (entry["device"], entry["sensor"], entry["format"]) == (device, sensor, "onnx")
        assert entry["model_id"].startswith(f"{device}.{sensor}.")
        blob = trained_root / "models" / entry["blob"]
        assert sha256(blob.read_bytes()) == entry["sha256"]
        assert entry["training_window"]["rows"] == SMALL.readings // 2
        assert entry["training_window"]["end"] < entry["evaluation_window"]["start"]
        m = entry["metrics"]
        assert {"precision", "recall", "f1", "tp", "fp", "fn", "tn", "by_type"} <= set(m)
        assert m["tp"] + m["fp"] + m["fn"] + m["tn"] == entry["evaluation_window"]["rows"]
    s = manifest["summary"]
    assert s == summarize(list(manifest["models"].values()))
    assert s["models"] == SMALL.series and 0 < s["recall"] <= 1 and 0 < s["precision"] <= 1
