"""The entry script's Azure ML contract and the local runner: outputs, idempotence, failures."""

from __future__ import annotations

import io
import json
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from batch_scoring import features, runner, score
from batch_scoring.model import OnnxModel
from batch_scoring.schema import OUTPUT_COLUMNS, Partition
from batch_scoring.storage import StoreSpec

KEYS = [f"D{d:03d}/S{s:02d}" for d in range(2) for s in range(3)]


def outputs(root: Path) -> list[str]:
    preds = root / "preds"
    return sorted(p.relative_to(preds).as_posix() for p in preds.rglob("*.parquet"))


def expected_output(root: Path, key: str) -> pd.DataFrame:
    """Score one partition straight from its files, independently of the job."""
    manifest = json.loads((root / "models" / "manifest.json").read_text())
    data = pd.read_parquet(root / "data" / f"{key}.parquet")
    model = OnnxModel((root / "models" / manifest["models"][key]["blob"]).read_bytes())
    pred, sc = model.predict(features.compute(data["Value"].to_numpy(), manifest["config"]["features"]))
    return data.assign(Prediction=pred, Score=sc)[OUTPUT_COLUMNS]


def test_init_run_contract_writes_one_output_per_partition(store_root: Path) -> None:
    score.init(["--store", f"local:{store_root}"])
    result = score.run(KEYS[:4])
    assert isinstance(result, pd.DataFrame) and list(result["partition"]) == KEYS[:4]
    assert set(result["status"]) == {"scored"} and not score.LAST_ERRORS
    assert outputs(store_root) == [f"{k}.parquet" for k in KEYS[:4]]
    for key in KEYS[:4]:
        got = pd.read_parquet(store_root / "preds" / f"{key}.parquet")
        assert list(got.columns) == OUTPUT_COLUMNS
        want = expected_output(store_root, key)
        assert got["Prediction"].isin([0, 1]).all()
        pd.testing.assert_frame_equal(got, want, check_dtype=False)
        # Original mapping: +1 (inside) -> 0, -1 (outside, negative score) -> 1.
        assert ((got["Score"] < 0) == (got["Prediction"] == 1)).mean() > 0.99


def test_output_carries_provenance_and_rerun_skips(store_root: Path) -> None:
    score.init(["--store", f"local:{store_root}"])
    score.run(KEYS[:1])
    meta = pq.read_schema(store_root / "preds" / f"{KEYS[0]}.parquet").metadata
    info = json.loads(meta[b"batch_scoring"])
    assert info["partition"] == KEYS[0] and len(info["input_sha256"]) == 64 and info["rows"] == 720
    before = (store_root / "preds" / f"{KEYS[0]}.parquet").stat().st_mtime_ns
    assert list(score.run(KEYS[:1])["status"]) == ["skipped"]
    assert (store_root / "preds" / f"{KEYS[0]}.parquet").stat().st_mtime_ns == before
    score.init(["--store", f"local:{store_root}", "--force"])
    assert list(score.run(KEYS[:1])["status"]) == ["scored"]


def test_changed_input_is_rescored(store_root: Path) -> None:
    score.init(["--store", f"local:{store_root}"])
    score.run(KEYS[:1])
    path = store_root / "data" / f"{KEYS[0]}.parquet"
    df = pd.read_parquet(path)
    df.loc[5, "Value"] += 100.0
    df.to_parquet(path, index=False)
    assert list(score.run(KEYS[:1])["status"]) == ["scored"]
    assert pd.read_parquet(store_root / "preds" / f"{KEYS[0]}.parquet")["Prediction"].iloc[5] == 1


def test_azure_ml_style_folders_and_file_paths(store_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "mounted_output"
    score.init(
        [
            "--data_dir",
            str(store_root / "data"),
            "--models_dir",
            str(store_root / "models"),
            "--output_dir",
            str(out),
            "--error_threshold",
            "5",
        ]
    )  # unknown AML args are ignored
    items = [str(store_root / "data" / f"{k}.parquet") for k in KEYS[:2]]
    items.append(str(store_root / "data" / "manifest.json"))  # uri_folder lists every file
    result = score.run(items)
    assert list(result["status"]) == ["scored", "scored", "ignored"]
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.parquet")) == [
        f"{k}.parquet" for k in KEYS[:2]
    ]


def _break_store(root: Path) -> dict[str, str]:
    """Three broken partitions, one per failure kind; returns key -> expected error fragment."""
    manifest_path = root / "models" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    # Corrupt model bytes whose checksum was (maliciously or by mistake) updated to match.
    blob = {key: entry["blob"] for key, entry in manifest["models"].items()}  # in the version's folder
    (root / "models" / blob["D000/S00"]).write_bytes(b"not an onnx graph")
    import hashlib

    manifest["models"]["D000/S00"]["sha256"] = hashlib.sha256(b"not an onnx graph").hexdigest()
    manifest_path.write_text(json.dumps(manifest))
    # Model bytes changed after the manifest was written.
    with open(root / "models" / blob["D000/S01"], "ab") as fh:
        fh.write(b"\0")
    # Data partition gone.
    (root / "data" / "D001/S02.parquet").unlink()
    return {
        "D000/S00": "InvalidProtobuf|Fail|ONNX|onnx",
        "D000/S01": "ChecksumMismatch",
        "D001/S02": "MissingBlob",
    }


def test_failing_partitions_are_reported_and_the_others_complete(store_root: Path) -> None:
    broken = _break_store(store_root)
    score.init(["--store", f"local:{store_root}"])
    result = score.run(KEYS)
    assert sorted(result["partition"]) == sorted(set(KEYS) - set(broken))
    assert set(score.LAST_ERRORS) == set(broken)
    for key, pattern in broken.items():
        assert pd.Series([score.LAST_ERRORS[key]]).str.contains(pattern).all(), score.LAST_ERRORS[key]
    assert outputs(store_root) == sorted(f"{k}.parquet" for k in set(KEYS) - set(broken))


@pytest.mark.parametrize("workers", [0, 2])
def test_runner_retries_failures_and_applies_the_threshold(store_root: Path, workers: int) -> None:
    broken = _break_store(store_root)
    spec = StoreSpec.parse(f"local:{store_root}")
    s = runner.run_local(
        spec, workers=workers, mini_batch_size=2, max_retries=2, error_threshold=0, progress=False
    )
    assert (s.partitions, s.scored, s.failed) == (6, 3, 3)
    assert not s.ok
    assert set(s.failures) == set(broken)
    assert all(f["attempts"] == 3 for f in s.failures.values())  # 1 try + 2 retries
    assert s.retries == 6
    assert (store_root / "preds" / "_FAILURES.json").exists()
    assert not (store_root / "preds" / "_SUCCESS.json").exists()
    # Same failures under a threshold of 3: the run is OK, the good partitions are skipped.
    s2 = runner.run_local(
        spec, workers=workers, mini_batch_size=2, max_retries=0, error_threshold=3, progress=False
    )
    assert s2.ok and (s2.skipped, s2.failed) == (3, 3)
    marker = json.loads((store_root / "preds" / "_SUCCESS.json").read_text())
    assert marker["failed"] == 3 and set(marker["failures"]) == set(broken)
    assert runner.run_local(spec, workers=workers, max_retries=0, error_threshold=-1, progress=False).ok


def test_transient_failure_succeeds_on_retry(store_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: dict[str, int] = {}
    real = score.score_partition

    def flaky(ctx: score.Context, part: Partition) -> dict:
        calls[part.key] = calls.get(part.key, 0) + 1
        if part.key == "D001/S01" and calls[part.key] == 1:
            raise ConnectionError("storage hiccup")
        return real(ctx, part)

    monkeypatch.setattr(score, "score_partition", flaky)
    s = runner.run_local(StoreSpec.parse(f"local:{store_root}"), workers=0, max_retries=1, progress=False)
    assert s.ok and s.scored == 6 and s.failed == 0 and s.retries == 1
    assert calls["D001/S01"] == 2


@pytest.mark.skipif(os.name != "posix", reason="relies on fork inheriting the patched function")
def test_a_dying_worker_process_is_survived(store_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = score.score_partition

    def crash_on_one(ctx: score.Context, part: Partition) -> dict:
        if part.key == "D000/S02":
            os._exit(13)  # a segfault or OOM kill looks like this to the pool
        return real(ctx, part)

    monkeypatch.setattr(score, "score_partition", crash_on_one)
    s = runner.run_local(
        StoreSpec.parse(f"local:{store_root}"),
        workers=2,
        mini_batch_size=3,
        max_retries=1,
        error_threshold=1,
        progress=False,
    )
    assert s.ok and s.failed == 1 and set(s.failures) == {"D000/S02"}
    assert "died" in s.failures["D000/S02"]["error"] and s.failures["D000/S02"]["attempts"] == 2
    # Partitions of the crashed mini-batch written before the crash are skipped on retry.
    assert s.scored + s.skipped == 5 and len(outputs(store_root)) == 5


def test_runner_refuses_a_store_without_models(store_root: Path) -> None:
    shutil.rmtree(store_root / "models")
    with pytest.raises(ValueError, match="train"):
        runner.run_local(StoreSpec.parse(f"local:{store_root}"), workers=0, progress=False)


def test_parquet_output_is_readable_from_bytes(store_root: Path) -> None:
    score.init(["--store", f"local:{store_root}"])
    score.run(KEYS[:1])
    payload = (store_root / "preds" / f"{KEYS[0]}.parquet").read_bytes()
    assert score.provenance(payload)["rows"] == 720
    assert score.provenance(b"garbage") is None
    assert np.isfinite(pd.read_parquet(io.BytesIO(payload))["Score"]).all()
