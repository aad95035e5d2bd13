"""Which models a benchmark loads, how variants are rendered, what settings are reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from imaging.specs import MODELS as IMAGE_MODELS
from perf import servers, tuning
from serving.modelspec import DynamicBatching, Instances, OrtSettings

SPECS = {s.name: s for s in IMAGE_MODELS}
ENSEMBLE = "efficientnet_lite0"


def test_closure_adds_every_step_once() -> None:
    names = servers.closure([ENSEMBLE, ENSEMBLE], SPECS)
    assert names[0] == ENSEMBLE
    assert set(names) == {
        ENSEMBLE,
        f"{ENSEMBLE}_preprocess",
        f"{ENSEMBLE}_network",
        f"{ENSEMBLE}_postprocess",
    }
    with pytest.raises(KeyError, match="unknown model"):
        servers.closure(["nope"], SPECS)


def test_onnx_step_and_input_tensor() -> None:
    assert servers.onnx_step(ENSEMBLE, SPECS).name == f"{ENSEMBLE}_network"
    assert servers.onnx_step(f"{ENSEMBLE}_preprocess", SPECS) is None
    assert servers.input_tensor(ENSEMBLE, SPECS) == "IMAGE"


def test_settings_describe_batching_instances_and_threads() -> None:
    found = servers.settings(servers.closure([ENSEMBLE], SPECS), SPECS)
    assert ENSEMBLE not in found  # ensembles have no settings of their own
    net = SPECS[f"{ENSEMBLE}_network"]
    text = found[net.name]
    assert f"delay {net.dynamic_batching.max_queue_delay_us} µs" in text
    assert f"{net.instances.cpu} CPU instance(s)" in text
    assert f"ORT intra/inter threads {net.ort.intra_op_threads}/{net.ort.inter_op_threads}" in text


def fake_artifacts(root: Path, names: list[str]) -> Path:
    """Placeholder files where the exporters would write (rendering only links them)."""
    for name in names:
        spec = SPECS[name]
        for relative in (spec.artifact, *spec.extra_files.values()):
            if relative:
                (root / relative).parent.mkdir(parents=True, exist_ok=True)
                (root / relative).write_bytes(b"placeholder")
    return root


def test_build_repository_renders_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(servers, "catalog", lambda: SPECS)
    names = servers.closure([ENSEMBLE], SPECS)
    artifacts = fake_artifacts(tmp_path / "artifacts", names)
    repo = tmp_path / "repo"
    (repo / "stale_model").mkdir(parents=True)  # a fresh repository each time
    overrides = {
        f"{ENSEMBLE}_network": {
            "instances": Instances(cpu=2, gpu=1),
            "ort": OrtSettings(1, 1),
            "dynamic_batching": DynamicBatching((8,), 12345),
        }
    }
    written = servers.build_repository([ENSEMBLE], repo, overrides, artifacts_dir=artifacts)
    assert sorted(written) == sorted(names)
    assert sorted(p.name for p in repo.iterdir()) == sorted(names)
    config = (repo / f"{ENSEMBLE}_network" / "config.pbtxt").read_text()
    assert "max_queue_delay_microseconds: 12345" in config
    assert "count: 2" in config
    assert 'key: "ORT_INTRA_OP_THREADS"\n  value {\n    string_value: "1"' in config
    untouched = (repo / f"{ENSEMBLE}_preprocess" / "config.pbtxt").read_text()
    assert "12345" not in untouched
    with pytest.raises(KeyError):
        servers.build_repository([ENSEMBLE], repo, {"nope": {}}, artifacts_dir=artifacts)


@pytest.mark.parametrize("variants", [tuning.image_variants(ENSEMBLE), tuning.faq_variants(ENSEMBLE)])
def test_every_variant_changes_only_models_of_the_ensemble(variants: list[tuning.Variant]) -> None:
    members = set(servers.closure([ENSEMBLE], SPECS))
    names = [v.name for v in variants]
    assert len(set(names)) == len(names) and names[0] == "as specified"
    assert variants[0].make(SPECS) == {} and variants[-1] is tuning.AGAIN
    for variant in variants[1:-1]:
        overrides = variant.make(SPECS)
        assert overrides, variant.name
        assert set(overrides) <= members
        for name, changes in overrides.items():
            assert set(changes) <= {"dynamic_batching", "instances", "ort"}
            spec = SPECS[name]
            if "dynamic_batching" in changes:
                assert spec.max_batch_size > 0


def test_describe_overrides_is_readable() -> None:
    text = tuning.describe_overrides({"m": {"ort": OrtSettings(1, 1)}})
    assert text == "m: ort(intra_op_threads=1, inter_op_threads=1)"
    assert tuning.describe_overrides({}) == "no change"


def test_a_variant_equal_to_the_spec_is_recognised() -> None:
    net = SPECS[f"{ENSEMBLE}_network"]
    assert tuning.is_noop({net.name: {"ort": net.ort, "instances": net.instances}}, SPECS)
    assert not tuning.is_noop({net.name: {"ort": OrtSettings(net.ort.intra_op_threads + 1, 1)}}, SPECS)


def test_medians_condense_rounds() -> None:
    from perf.results import LoadPoint

    pts = [
        LoadPoint(
            "m", "triton", "perf_analyzer", 8, rps, 5.0 + i, 20.0 + i, label="tune:a", extra={"round": i}
        )
        for i, rps in enumerate((900.0, 1500.0, 1000.0))
    ]
    pts.append(LoadPoint("m", "triton", "perf_analyzer", 16, 2000.0, 9.0, 30.0, label="tune:a"))
    by_level = {p.concurrency: p for p in tuning.medians(pts)}
    assert by_level[8].throughput == 1000.0 and by_level[8].p50_ms == 6.0 and by_level[8].p99_ms == 21.0
    assert by_level[8].extra == {"rounds": 3.0, "min_throughput": 900.0, "max_throughput": 1500.0}
    assert by_level[16].extra["rounds"] == 1.0
    rows = tuning.summary(pts, p99_budget_ms=25)
    assert "| a | 8 | 1,000.0 ✓ | 900.0–1,500.0 | 6.0 | 21.0 | 3 |" in rows
    assert "| a | 16 | 2,000.0 | 2,000.0–2,000.0 | 9.0 | 30.0 | 1 |" in rows


def test_slug_is_ascii_for_the_python_backend() -> None:
    assert tuning._slug("delay 500 µs") == "delay_500__s"
    assert tuning._slug("2 network instances x 1 thread").isascii()
