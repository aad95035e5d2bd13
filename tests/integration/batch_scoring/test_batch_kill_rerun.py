"""Kill the scoring job halfway, run it again: exactly one complete output per partition."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from batch_scoring import features
from batch_scoring.model import OnnxModel
from batch_scoring.schema import OUTPUT_COLUMNS
from batch_scoring.storage import Container, StoreSpec

REPO = Path(__file__).resolve().parents[3]
TOTAL = 200  # conftest.KILL_SET: 20 devices x 10 sensors


def _outputs(preds: Container) -> list[str]:
    return [n for n in preds.list() if n.endswith(".parquet")]


def _score_command(store_args: list[str], *extra: str) -> list[str]:
    """``batch_scoring score`` on two workers, quiet, as a command line."""
    return [
        sys.executable,
        "-m",
        "batch_scoring",
        "score",
        *store_args,
        "--workers",
        "2",
        "--no-progress",
        *extra,
    ]


def _started(store_args: list[str], preds: Container, at_least: int = 20) -> subprocess.Popen:
    """`score` in its own process group, once it has written ``at_least`` outputs."""
    proc = subprocess.Popen(
        _score_command(store_args, "--mini-batch-size", "1"),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while len(_outputs(preds)) < at_least:
        if proc.poll() is not None or time.monotonic() > deadline:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            raise AssertionError("the job ended before it could be killed, or wrote nothing")
        time.sleep(0.01)
    return proc


def _kill_halfway(store_args: list[str], preds: Container, at_least: int = 20) -> int:
    """SIGKILL the whole group (the job and its workers) once some outputs exist."""
    proc = _started(store_args, preds, at_least)
    os.killpg(proc.pid, signal.SIGKILL)  # main process and its workers, mid-write
    proc.wait()
    time.sleep(0.2)
    return len(_outputs(preds))


def _check_complete(spec: StoreSpec, summary: dict, done_before: int) -> None:
    store = spec.open()
    manifest = json.loads(store.models.read_bytes("manifest.json"))
    expected = sorted(f"{k}.parquet" for k in manifest["models"])
    assert len(expected) == TOTAL
    names = store.preds.list()
    assert _outputs(store.preds) == expected  # one per partition: none missing, none extra
    assert [n for n in names if not n.endswith(".parquet")] == ["_SUCCESS.json"]  # no partial files
    assert summary["failed"] == 0 and summary["skipped"] == done_before
    assert summary["scored"] == TOTAL - done_before
    for name in expected:  # every output is complete and right
        got = pd.read_parquet(io.BytesIO(store.preds.read_bytes(name)))
        key = name.removesuffix(".parquet")
        data = pd.read_parquet(io.BytesIO(store.data.read_bytes(f"{key}.parquet")))
        model = OnnxModel(store.models.read_bytes(manifest["models"][key]["blob"]))
        pred, sc = model.predict(features.compute(data["Value"].to_numpy(), "context"))
        want = data.assign(Prediction=pred, Score=sc)[OUTPUT_COLUMNS]
        pd.testing.assert_frame_equal(got, want, check_dtype=False)


def _rerun(store_args: list[str], tmp_path: Path) -> dict:
    summary = tmp_path / "summary.json"
    res = subprocess.run(
        _score_command(store_args, "--summary-json", str(summary)),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stdout + res.stderr
    return json.loads(summary.read_text())


def test_kill_and_rerun_local(kill_store: Path, tmp_path: Path) -> None:
    spec = StoreSpec.parse(f"local:{kill_store}")
    args = ["--store", f"local:{kill_store}"]
    done = _kill_halfway(args, spec.open().preds)
    assert 0 < done < TOTAL, done
    summary = _rerun(args, tmp_path)
    assert not list((kill_store / "preds").rglob(".*"))  # temp files of killed writers are gone
    _check_complete(spec, summary, done)
    # A third run changes nothing.
    assert _rerun(args, tmp_path)["skipped"] == TOTAL


@pytest.mark.usefixtures("azurite")
def test_kill_and_rerun_azurite(blob_kill_store: StoreSpec, tmp_path: Path) -> None:
    spec = blob_kill_store
    args = ["--store", spec.path, "--prefix", spec.prefix]
    done = _kill_halfway(args, spec.open().preds)
    assert 0 < done < TOTAL, done
    summary = _rerun(args, tmp_path)
    _check_complete(spec, summary, done)


def test_killing_only_the_runner_ends_its_workers(kill_store: Path) -> None:
    """SIGKILL to the runner alone (a node's OOM killer, ``kill -9 <pid>``): its workers die with
    it instead of going on with the mini-batches they hold, and nothing more is written."""
    import psutil

    preds = StoreSpec.parse(f"local:{kill_store}").open().preds
    proc = _started(["--store", f"local:{kill_store}"], preds)
    try:
        workers = psutil.Process(proc.pid).children(recursive=True)
        assert workers, "the runner has no worker processes"
        proc.kill()  # the runner only, not its process group
        proc.wait()
        _, alive = psutil.wait_procs(workers, timeout=10)
        assert not alive, f"workers outlived the runner: {[p.pid for p in alive]}"
        written = len(_outputs(preds))
        time.sleep(1.0)
        assert len(_outputs(preds)) == written < TOTAL  # nothing written after the runner died
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
