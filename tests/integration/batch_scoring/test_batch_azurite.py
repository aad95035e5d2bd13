"""Blob Storage through a real Azurite: the storage backend, the CLI end to end, failures."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from batch_scoring import runner
from batch_scoring.azurite import Azurite
from batch_scoring.storage import BlobContainer, MissingBlob, StoreSpec

REPO = Path(__file__).resolve().parents[3]


def test_blob_container_round_trip(azurite: Azurite, blob_prefix: str) -> None:
    c = BlobContainer(azurite.connection_string, f"{blob_prefix}unit")
    c.write_bytes("D0/S0.bin", b"one")
    c.write_bytes("D0/S0.bin", b"two")  # one Put Blob replaces it atomically
    c.write_bytes("D0/S1.bin", b"x" * 100_000)
    assert c.read_bytes("D0/S0.bin") == b"two"
    assert c.list() == ["D0/S0.bin", "D0/S1.bin"] and c.list("D0/S1") == ["D0/S1.bin"]
    assert c.exists("D0/S1.bin") and not c.exists("nope")
    with pytest.raises(MissingBlob):
        c.read_bytes("nope")
    c.delete("D0/S1.bin")
    c.delete("D0/S1.bin")
    assert c.list() == ["D0/S0.bin"]
    assert c.cleanup_partial() == 0


def test_cli_demo_and_rerun_against_azurite(azurite: Azurite, blob_prefix: str) -> None:
    """What a fresh clone runs: the default data set, trained and scored in Blob Storage."""
    store = ["--store", f"azurite:{azurite.port}", "--prefix", blob_prefix]
    cmd = [sys.executable, "-m", "batch_scoring"]
    res = subprocess.run(
        [*cmd, "demo", *store, "--no-progress"], cwd=REPO, capture_output=True, text=True, timeout=180
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "started Azurite" not in res.stderr  # it used the running server
    assert "partitions 15: scored 15" in res.stdout
    preds = BlobContainer(azurite.connection_string, f"{blob_prefix}preds", create=False)
    names = preds.list()
    assert len([n for n in names if n.endswith(".parquet")]) == 15 and "_SUCCESS.json" in names
    df = pd.read_parquet(io.BytesIO(preds.read_bytes("D002/S04.parquet")))
    assert list(df.columns) == ["TS", "Device", "Sensor", "Value", "Prediction", "Score"]
    assert len(df) == 1440 and set(df["Device"]) == {"D002"} and df["Prediction"].isin([0, 1]).all()
    res = subprocess.run(
        [*cmd, "score", *store, "--no-progress"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stdout + res.stderr
    assert "scored 0, skipped (up to date) 15" in res.stdout
    assert preds.list() == names


def test_blob_failures_are_reported_and_the_others_complete(blob_kill_store: StoreSpec) -> None:
    spec = blob_kill_store
    store = spec.open()
    manifest = json.loads(store.models.read_bytes("manifest.json"))
    blob = {key: entry["blob"] for key, entry in manifest["models"].items()}  # in the version's folder
    store.models.write_bytes(blob["D000/S00"], b"corrupt")  # checksum mismatch
    manifest["models"]["D000/S01"]["sha256"] = hashlib.sha256(b"junk").hexdigest()
    store.models.write_bytes(blob["D000/S01"], b"junk")  # matches the manifest, not ONNX
    store.models.write_bytes("manifest.json", json.dumps(manifest).encode())
    store.data.delete("D019/S09.parquet")  # missing data
    s = runner.run_local(
        spec, workers=2, mini_batch_size=20, max_retries=1, error_threshold=2, progress=False
    )
    assert not s.ok and s.failed == 3 and s.scored == 197
    assert "ChecksumMismatch" in s.failures["D000/S00"]["error"]
    assert "MissingBlob" in s.failures["D019/S09"]["error"]
    assert all(f["attempts"] == 2 for f in s.failures.values())
    assert "_FAILURES.json" in store.preds.list() and "_SUCCESS.json" not in store.preds.list()
    assert len([n for n in store.preds.list() if n.endswith(".parquet")]) == 197
