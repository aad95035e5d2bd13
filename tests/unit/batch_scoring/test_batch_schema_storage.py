"""Partition naming and the two storage backends' local behaviour."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from batch_scoring.schema import Partition
from batch_scoring.storage import LocalContainer, MissingBlob, StoreSpec, azurite_connection_string


@pytest.mark.parametrize(
    "item",
    ["D001/S02", "D001/S02.parquet", "D001/S02.csv", "/mnt/azureml/data/D001/S02.parquet", r"x\D001\S02.csv"],
)
def test_partition_parse_accepts_keys_blobs_and_paths(item: str) -> None:
    assert Partition.parse(item) == Partition("D001", "S02")


@pytest.mark.parametrize("bad", ["S02", "D0/..", "../..", "D 1/S2", ".hidden/S0"])
def test_partition_rejects_unsafe_or_incomplete_names(bad: str) -> None:
    with pytest.raises(ValueError):
        Partition.parse(bad)


def test_partition_blob_names() -> None:
    p = Partition("D000", "S01")
    assert (p.key, p.model_blob, p.pred_blob, p.data_blob("csv")) == (
        "D000/S01",
        "D000/S01.onnx",
        "D000/S01.parquet",
        "D000/S01.csv",
    )


def test_local_write_is_atomic_and_partials_are_invisible(tmp_path: Path) -> None:
    c = LocalContainer(tmp_path)
    c.write_bytes("a/b.bin", b"one")
    c.write_bytes("a/b.bin", b"two")  # replace, never append
    assert c.read_bytes("a/b.bin") == b"two"
    # What a killed writer leaves behind: a hidden temp file beside the target.
    (tmp_path / "a" / ".c.bin.tmp-123-abcd").write_bytes(b"half")
    assert c.list() == ["a/b.bin"]
    assert c.cleanup_partial() == 1
    assert sorted(os.listdir(tmp_path / "a")) == ["b.bin"]


def test_local_write_failure_leaves_no_temp_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    c = LocalContainer(tmp_path)

    def boom(*_a: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        c.write_bytes("x.bin", b"data")
    assert list(tmp_path.iterdir()) == []


def test_local_missing_and_escape(tmp_path: Path) -> None:
    c = LocalContainer(tmp_path)
    with pytest.raises(MissingBlob):
        c.read_bytes("nope")
    assert not c.exists("nope")
    with pytest.raises(ValueError):
        c.write_bytes("../outside", b"x")
    c.delete("nope")  # deleting an absent blob is not an error (idempotent cleanup)


def test_store_spec_parsing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert StoreSpec.parse(f"local:{tmp_path}").kind == "local"
    assert StoreSpec.parse(str(tmp_path)).path == str(tmp_path)
    az = StoreSpec.parse("azurite:12345", prefix="t-")
    assert az.kind == "blob" and az.connection_string == azurite_connection_string(12345)
    assert "127.0.0.1:12345/devstoreaccount1" in az.connection_string
    assert StoreSpec.parse("azurite").connection_string == azurite_connection_string(10000)
    monkeypatch.delenv("AZURE_STORAGE_CONNECTION_STRING", raising=False)
    with pytest.raises(ValueError, match="connection"):
        StoreSpec.parse("blob")
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", "UseDevelopmentStorage=true")
    assert StoreSpec.parse("blob").connection_string == "UseDevelopmentStorage=true"
    with pytest.raises(ValueError, match="unknown store"):
        StoreSpec.parse("s3:bucket")
    # The secret never shows in a repr (logs, tracebacks).
    assert "AccountKey" not in repr(az)


def test_local_store_layout(tmp_path: Path) -> None:
    store = StoreSpec.parse(f"local:{tmp_path}", prefix="p-").open()
    store.preds.write_bytes("D0/S0.parquet", b"x")
    assert (tmp_path / "p-preds" / "D0" / "S0.parquet").read_bytes() == b"x"
