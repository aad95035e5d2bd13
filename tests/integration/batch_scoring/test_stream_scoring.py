"""Windowed scoring from the ingested aggregates: a window's predictions equal those of the
whole series, a rerun is a no-op, hours and shards never touch each other's outputs, and an
open window is refused."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import UTC, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pytest

from batch_scoring.generate import GenSpec, generate
from batch_scoring.ingest import Settings, run
from batch_scoring.model import PRESETS
from batch_scoring.produce import send
from batch_scoring.runner import run_local
from batch_scoring.storage import StoreSpec
from batch_scoring.train import train_all
from batch_scoring.windowed import Shard, Window, WindowError, score_window
from tests.integration.batch_scoring.conftest import REPO, Stream, new_stream

SPEC = GenSpec(devices=2, sensors=3, readings=180, seed=9)  # 00:00-02:59, one reading a minute
HOUR1 = Window.parse("2024-01-01T01:00/2024-01-01T02:00")


@pytest.fixture(scope="module")
def ingested(broker, postgres, tmp_path_factory: pytest.TempPathFactory) -> tuple[Stream, Path]:
    """The series in a trained store (models, and whole-series predictions to compare with),
    and the same readings sent through the broker and ingested."""
    root = tmp_path_factory.mktemp("stream-store")
    spec = StoreSpec.parse(f"local:{root}")
    generate(spec, SPEC, progress=False)
    assert not train_all(spec, PRESETS["default"], workers=1, progress=False)["errors"]
    assert run_local(spec, workers=1, progress=False).ok  # whole-file mode: preds/<d>/<s>.parquet
    stream = new_stream(broker, postgres)
    send(stream.kafka, SPEC, topic=stream.topic)
    run(Settings(db=stream.db, kafka=stream.kafka, topic=stream.topic, idle_exit_s=2.0))
    return stream, root


def copy_store(root: Path, to: Path) -> StoreSpec:
    """A store with the same models and no window outputs yet."""
    shutil.copytree(root / "models", to / "models")
    return StoreSpec.parse(f"local:{to}")


def test_a_window_scored_from_window_and_tail_equals_the_whole_series(ingested, tmp_path: Path) -> None:
    stream, root = ingested
    store = copy_store(root, tmp_path).open()
    with psycopg.connect(stream.db, autocommit=True) as conn:
        outcome = score_window(conn, store, HOUR1)
        flagged = conn.execute("SELECT device, sensor, ts, value FROM anomalies ORDER BY 1, 2, 3").fetchall()
    assert outcome.status == "scored" and outcome.series == 6 and outcome.rows == 6 * 60
    assert not outcome.failed and len(flagged) == outcome.anomalies > 0
    scored = pd.read_parquet(tmp_path / "preds" / HOUR1.prefix / "part-0-of-1.parquet")
    alarms = scored[scored["Prediction"] == 1].sort_values(["Device", "Sensor", "TS"])
    assert [(d, s, ts.astimezone(UTC).replace(tzinfo=None), v) for d, s, ts, v in flagged] == [
        (r.Device, r.Sensor, r.TS.to_pydatetime(), r.Value) for r in alarms.itertuples()
    ]  # the anomalies table holds exactly the flagged predictions, at their UTC times
    assert not scored.duplicated(["Device", "Sensor", "TS"]).any()  # one prediction per series and interval
    for part in SPEC.partitions():
        window = scored[(scored["Device"] == part.device) & (scored["Sensor"] == part.sensor)]
        whole = pd.read_parquet(root / "preds" / f"{part.key}.parquet")
        whole = whole[(whole["TS"] >= "2024-01-01 01:00") & (whole["TS"] < "2024-01-01 02:00")]
        assert list(window["TS"]) == list(whole["TS"])
        assert (window["Prediction"].to_numpy() == whole["Prediction"].to_numpy()).all()
        np.testing.assert_allclose(window["Score"], whole["Score"], rtol=1e-5, atol=1e-5)
    assert (tmp_path / "preds" / HOUR1.prefix / "_SUCCESS.json").exists()


class RetrainsOnFirstModel:
    """A models container that publishes a new version (a real training of the whole store) when
    the run reads its first model: a retraining that lands in the middle of a window."""

    def __init__(self, spec: StoreSpec) -> None:
        self.spec, self.inner, self.newer = spec, spec.open().models, None

    def read_bytes(self, name: str) -> bytes:
        if name != "manifest.json" and self.newer is None:
            self.newer = train_all(
                self.spec, dataclasses.replace(PRESETS["default"], nu=0.02), progress=False, tolerance=1.0
            )
        return self.inner.read_bytes(name)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


def test_a_retraining_during_a_window_leaves_the_run_on_its_version(ingested, tmp_path: Path) -> None:
    stream, root = ingested
    spec = copy_store(root, tmp_path)
    shutil.copytree(root / "data", tmp_path / "data")  # what the retraining trains on
    started_with = json.loads((tmp_path / "models" / "manifest.json").read_text())
    models = RetrainsOnFirstModel(spec)
    store = dataclasses.replace(spec.open(), models=models)
    with psycopg.connect(stream.db, autocommit=True) as conn:
        outcome = score_window(conn, store, HOUR1)
        used = dict(conn.execute("SELECT device || '/' || sensor, model_sha256 FROM anomalies").fetchall())
    assert models.newer is not None and models.newer["gate"]["passed"]
    serving = json.loads((tmp_path / "models" / "manifest.json").read_text())
    assert serving["version"] == models.newer["version"] != started_with["version"]  # it landed mid-run
    assert outcome.status == "scored" and not outcome.failed and used
    for key, sha in used.items():  # every flagged reading was scored by the version the run began with
        assert sha == started_with["models"][key]["sha256"] != models.newer["models"][key]["sha256"]


def test_a_rerun_is_a_no_op_and_another_hour_leaves_this_one_alone(ingested, tmp_path: Path) -> None:
    stream, root = ingested
    store = copy_store(root, tmp_path).open()
    with psycopg.connect(stream.db, autocommit=True) as conn:
        score_window(conn, store, HOUR1)
        hour1 = {p: p.read_bytes() for p in (tmp_path / "preds" / HOUR1.prefix).rglob("*") if p.is_file()}
        assert score_window(conn, store, HOUR1).status == "skipped"
        hour0 = score_window(conn, store, Window.parse("2024-01-01T00:00/2024-01-01T01:00"))
    assert hour0.status == "scored" and hour0.rows == 6 * 60  # the first hour: no tail, no failure
    assert {p: p.read_bytes() for p in (tmp_path / "preds" / HOUR1.prefix).rglob("*") if p.is_file()} == hour1


def test_shards_split_the_series_and_keep_their_own_markers(ingested, tmp_path: Path) -> None:
    stream, root = ingested
    store = copy_store(root, tmp_path).open()
    with psycopg.connect(stream.db, autocommit=True) as conn:
        outcomes = [score_window(conn, store, HOUR1, shard=Shard(i, 2)) for i in range(2)]
    assert sum(o.series for o in outcomes) == 6 and all(o.series for o in outcomes)
    folder = tmp_path / "preds" / HOUR1.prefix
    assert sorted(p.name for p in folder.glob("_*")) == [
        "_SUCCESS.shard-0-of-2.json",
        "_SUCCESS.shard-1-of-2.json",
    ]
    files = sorted(folder.glob("*.parquet"))
    assert [f.name for f in files] == ["part-0-of-2.parquet", "part-1-of-2.parquet"]
    series = pd.concat(pd.read_parquet(f) for f in files).groupby(["Device", "Sensor"]).size()
    assert len(series) == 6 and (series == 60).all()  # every series in exactly one shard


def test_an_open_window_is_refused_with_its_own_exit_code(ingested, tmp_path: Path) -> None:
    stream, root = ingested
    copy_store(root, tmp_path)
    command = [sys.executable, "-m", "batch_scoring", "score-window", "--db", stream.db]
    command += ["--topic", stream.topic, "--store", f"local:{tmp_path}"]
    late = subprocess.run(
        [*command, "--window", "2024-01-01T02:00/2024-01-01T03:00"], cwd=REPO, capture_output=True, text=True
    )
    assert late.returncode == 3 and "not closed yet" in late.stderr  # readings up to 02:59, lateness 10 min
    ok = subprocess.run(
        [*command, "--window", "2024-01-01T01:00/2024-01-01T02:00"], cwd=REPO, capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stderr
    assert not (tmp_path / "preds" / "date=2024-01-01" / "hour=02").exists()


@pytest.mark.parametrize(
    "text", ["2024-01-01T01:00", "2024-01-01T02:00/2024-01-01T01:00", "2024-01-01T01:30/2024-01-01T02:30"]
)
def test_bad_windows_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        Window.parse(text)


def test_a_window_is_named_by_its_hour_in_utc() -> None:
    window = Window.parse("2024-01-01T03:00+02:00/2024-01-01T04:00+02:00")
    assert window.prefix == "date=2024-01-01/hour=01" and window.end - window.start == timedelta(hours=1)


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "batch_scoring", *args], cwd=REPO, capture_output=True, text=True
    )


def test_the_schedule_scores_the_latest_closed_hour_and_catches_up_missed_ones(
    ingested, tmp_path: Path
) -> None:
    stream, root = ingested
    copy_store(root, tmp_path)
    args = ["score-window", "--db", stream.db, "--topic", stream.topic, "--store", f"local:{tmp_path}"]
    args += ["--window", "last", "--catch-up", "1", "--metrics-file", str(tmp_path / "window.prom")]
    done = cli(*args)
    assert done.returncode == 0, done.stderr
    prom = (tmp_path / "window.prom").read_text()  # for the node exporter's textfile collector
    for hour in ("00", "01"):
        labels = f'shard="0/1",window="2024-01-01T{hour}:00:00+00:00/2024-01-01T'
        assert f"sensor_window_series{{{labels}" in prom and f"sensor_window_succeeded{{{labels}" in prom
    runs = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["window"][11:16] for r in runs] == ["00:00", "01:00"]  # closed up to 02:49
    assert all(r["status"] == "scored" and r["series"] == 6 for r in runs)
    assert [json.loads(line)["status"] for line in cli(*args).stdout.splitlines()] == ["skipped", "skipped"]


def test_a_windowed_run_killed_mid_window_and_rerun_leaves_exactly_one_output_per_window(
    ingested, tmp_path: Path
) -> None:
    """SIGKILL the run and its workers as soon as the first window's predictions file exists
    (before its success marker); the rerun gives each window one file, one marker, the same
    predictions as an undisturbed run, and no temporary files."""
    stream, root = ingested
    killed, clean = copy_store(root, tmp_path / "killed"), copy_store(root, tmp_path / "clean")
    base = ["score-window", "--db", stream.db, "--topic", stream.topic, "--window", "last", "--catch-up", "1"]
    run = [sys.executable, "-m", "batch_scoring", *base, "--store", killed.path, "--workers", "2"]
    proc = subprocess.Popen(
        run, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    preds, deadline = tmp_path / "killed" / "preds", time.monotonic() + 120
    while not list(preds.glob("date=*/hour=*/part-*.parquet")):
        assert proc.poll() is None and time.monotonic() < deadline, "the run ended before it could be killed"
        time.sleep(0.005)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    markers_at_kill = sorted(p.name for p in preds.glob("date=*/hour=*/_SUCCESS*.json"))
    rerun = cli(*base, "--store", killed.path)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert cli(*base, "--store", clean.path).returncode == 0
    hours = sorted(p.relative_to(preds).as_posix() for p in preds.glob("date=*/hour=*"))
    assert hours == ["date=2024-01-01/hour=00", "date=2024-01-01/hour=01"], hours
    for hour in hours:
        files = sorted(p.name for p in (preds / hour).iterdir())
        assert files == ["_SUCCESS.json", "part-0-of-1.parquet"], (hour, files, markers_at_kill)
        got = pd.read_parquet(preds / hour / "part-0-of-1.parquet")
        want = pd.read_parquet(tmp_path / "clean" / "preds" / hour / "part-0-of-1.parquet")
        pd.testing.assert_frame_equal(got, want)
    statuses = [json.loads(line)["status"] for line in rerun.stdout.splitlines()]
    assert statuses.count("scored") == 2 - len(markers_at_kill)  # what the kill left undone, no more


def test_retraining_reads_the_ingested_intervals_and_publishes_a_version(ingested, tmp_path: Path) -> None:
    stream, root = ingested
    copy_store(root, tmp_path)
    store = f"local:{tmp_path}"
    snap = cli("snapshot", "--db", stream.db, "--topic", stream.topic, "--store", store)
    assert snap.returncode == 0 and "wrote 6 series, 1,014 intervals" in snap.stdout, (
        snap.stdout + snap.stderr
    )
    data = pd.read_parquet(tmp_path / "data" / "D000" / "S00.parquet")
    assert len(data) == 169 and data["TS"].max() == pd.Timestamp("2024-01-01 02:48")  # closed intervals only
    train = cli("train", "--store", store, "--no-progress", "--workers", "1")
    assert train.returncode == 0 and "serving it" in train.stderr + train.stdout, train.stdout + train.stderr


def test_the_azure_ml_retraining_job_runs_from_its_staged_code(ingested, tmp_path: Path) -> None:
    """What the nightly command job runs, from the folder Azure ML would upload, with the secrets
    in the environment (as a Key Vault would have put them there)."""
    from batch_scoring.aml_job import stage_code

    stream, root = ingested
    copy_store(root, tmp_path / "store")
    code = stage_code(tmp_path / "aml")
    env = {**os.environ, "SENSOR_DB_URL": stream.db, "SENSOR_TOPIC": stream.topic}
    env.pop("PYTHONPATH", None)
    store = f"local:{tmp_path / 'store'}"
    job = subprocess.run(
        [sys.executable, "-m", "batch_scoring.retrain_job", "--store", store, "--workers", "1"],
        cwd=code,
        env=env,
        capture_output=True,
        text=True,
    )
    assert job.returncode == 0, job.stdout + job.stderr
    assert "wrote 6 series" in job.stdout and "serving it" in job.stdout + job.stderr
    manifest = json.loads((tmp_path / "store" / "models" / "manifest.json").read_text())
    assert manifest["summary"]["models"] == 6 and manifest["gate"]["passed"]


class GoneAfter:
    """A predictions container whose storage goes away after ``writes`` writes."""

    def __init__(self, inner, writes: int) -> None:
        self.inner, self.left, self.attempts = inner, writes, []

    def write_bytes(self, name: str, data: bytes) -> None:
        from azure.core.exceptions import ServiceRequestError

        self.attempts.append(name)
        if self.left <= 0:
            raise ServiceRequestError("Connection refused")
        self.left -= 1
        self.inner.write_bytes(name, data)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


def test_storage_that_goes_away_mid_window_stops_the_run_at_once_without_a_success_marker(
    ingested, tmp_path: Path
) -> None:
    stream, root = ingested
    store = copy_store(root, tmp_path).open()
    store.preds = GoneAfter(store.preds, writes=0)
    with psycopg.connect(stream.db, autocommit=True) as conn, pytest.raises(WindowError, match="stopped"):
        score_window(conn, store, HOUR1)
    assert len(store.preds.attempts) == 2  # the output refused, then the failure marker tried
    assert store.preds.attempts[-1].endswith("_FAILED.json")
    assert not (tmp_path / "preds" / HOUR1.prefix / "_SUCCESS.json").exists()


def test_an_unreachable_blob_store_is_a_clear_error_within_its_timeout(ingested) -> None:
    from batch_scoring.storage import azurite_connection_string
    from serving.triton import free_ports

    stream, _ = ingested
    env = {**os.environ, "AZURE_STORAGE_CONNECTION_STRING": azurite_connection_string(free_ports(1)[0])}
    env["BATCH_SCORING_STORAGE_TIMEOUT_S"] = "5"
    started = time.monotonic()
    done = subprocess.run(
        [
            *[
                sys.executable,
                "-m",
                "batch_scoring",
                "score-window",
                "--db",
                stream.db,
                "--topic",
                stream.topic,
            ],
            *["--store", "blob", "--window", "2024-01-01T01:00/2024-01-01T02:00"],
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert done.returncode == 1 and "error: ServiceRequestError" in done.stderr, done.stderr[-1500:]
    assert "Traceback" not in done.stderr and "Request URL" not in done.stderr
    assert time.monotonic() - started < 30
