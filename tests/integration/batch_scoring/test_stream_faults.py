"""The stream's services going away: the ingester gives up with a clear error within its
timeout, having committed nothing half-done, and a later run catches up exactly once."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

from batch_scoring.events import ensure_topic
from batch_scoring.generate import GenSpec
from batch_scoring.ingest import Settings, create_schema, run
from batch_scoring.produce import send
from batch_scoring.services import Broker, Postgres
from serving.triton import free_ports
from tests.integration.batch_scoring.conftest import REPO, TEST_ARTIFACTS, Stream


def ingest_command(db: str, bootstrap: str, topic: str, *extra: str) -> list[str]:
    command = [sys.executable, "-m", "batch_scoring", "ingest", "--db", db, "--bootstrap", bootstrap]
    return [*command, "--topic", topic, *extra]


def kill_mid_stream(command: list[str], db: str, service: Broker | Postgres, error: str) -> None:
    """Start the ingester, SIGKILL ``service`` once 1,000 readings are stored, and check that the
    ingester ends with exit code 1 and ``error`` soon after its timeout."""
    log_path = TEST_ARTIFACTS / f"ingest-{service.label.split()[-1]}-fault.log"
    with log_path.open("w") as log:
        ingester = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    stored, deadline = 0, time.monotonic() + 90
    while stored < 1000 and time.monotonic() < deadline:
        time.sleep(0.05)
        with psycopg.connect(db) as conn:
            stored = conn.execute("SELECT count(*) FROM readings").fetchone()[0]
    assert service.process is not None
    os.killpg(service.process.pid, signal.SIGKILL)  # gone, mid-stream
    service.process.wait()
    service.process = None
    killed_at = time.monotonic()
    assert ingester.wait(60) == 1
    assert time.monotonic() - killed_at < 30  # a few seconds of retries, then a clear error
    assert error in log_path.read_text()


def test_an_unreachable_broker_ends_the_ingester_with_a_clear_error_in_bounded_time(stream: Stream) -> None:
    dead = f"127.0.0.1:{free_ports(1)[0]}"  # nothing listens there
    started = time.monotonic()
    done = subprocess.run(
        ingest_command(stream.db, dead, stream.topic, "--broker-timeout-s", "4"),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    took = time.monotonic() - started
    assert done.returncode == 1 and "the broker is unreachable for 4 s" in done.stderr, done.stderr[-2000:]
    assert took < 30, took


def test_a_database_that_goes_away_mid_stream_ends_the_run_and_the_next_catches_up(broker: Broker) -> None:
    data = Path(tempfile.mkdtemp(prefix="pg-fault-"))
    port = free_ports(1)[0]
    database = Postgres(data, port=port, log_path=TEST_ARTIFACTS / "postgres-fault.log").start()
    topic = f"fault-{port}"
    try:
        ensure_topic({"bootstrap.servers": broker.bootstrap}, topic, partitions=4)
        send(
            {"bootstrap.servers": broker.bootstrap},
            GenSpec(devices=10, sensors=10, readings=100),
            topic=topic,
        )
        with psycopg.connect(database.url, autocommit=True) as conn:
            create_schema(conn)
        command = ingest_command(
            database.url, broker.bootstrap, topic, "--batch", "20", "--db-timeout-s", "5"
        )
        kill_mid_stream(command, database.url, database, "the database is unreachable for 5 s")

        database = Postgres(data, port=port, log_path=TEST_ARTIFACTS / "postgres-fault.log").start()  # back
        totals = run(
            Settings(
                db=database.url, kafka={"bootstrap.servers": broker.bootstrap}, topic=topic, idle_exit_s=2
            )
        )
        with psycopg.connect(database.url) as conn:
            rows = conn.execute(
                "SELECT count(*), count(DISTINCT (device, sensor, ts)) FROM readings"
            ).fetchone()
            windows = conn.execute("SELECT sum(readings) FROM readings_agg").fetchone()[0]
        assert rows == (10_000, 10_000) and windows == 10_000  # each reading once, none lost
        assert 0 < totals.stored <= 10_000 - 1000  # this run stored the rest
    finally:
        database.stop()
        shutil.rmtree(data, ignore_errors=True)


def counts(conn: psycopg.Connection) -> tuple[int, int]:
    """Readings stored, and readings counted in their windows."""
    rows = conn.execute("SELECT count(DISTINCT (device, sensor, ts)) FROM readings").fetchone()[0]
    return rows, conn.execute("SELECT coalesce(sum(readings), 0) FROM readings_agg").fetchone()[0]


def test_a_broker_that_goes_away_mid_stream_ends_the_run_and_a_resend_catches_up(stream: Stream) -> None:
    """The local broker keeps its log in memory, so a restarted one is empty: the devices send
    again (at-least-once), and the primary key keeps each reading once."""
    spec = GenSpec(devices=10, sensors=10, readings=100, seed=5)
    broker = Broker(log_path=TEST_ARTIFACTS / "tansu-fault.log").start()
    port = broker.port
    kafka = {"bootstrap.servers": broker.bootstrap}
    topic = f"broker-fault-{port}"
    try:
        ensure_topic(kafka, topic, partitions=4)
        send(kafka, spec, topic=topic)
        with psycopg.connect(stream.db, autocommit=True) as conn:
            create_schema(conn)
        command = ingest_command(
            stream.db, broker.bootstrap, topic, "--batch", "20", "--broker-timeout-s", "4"
        )
        kill_mid_stream(command, stream.db, broker, "the broker is unreachable for 4 s")
        with psycopg.connect(stream.db) as conn:
            rows, windows = counts(conn)
        # What was fetched before the broker went is stored, nothing half-written: each row in its window.
        assert 1000 <= rows <= 10_000 and windows == rows

        broker = Broker(port=port, log_path=TEST_ARTIFACTS / "tansu-fault.log").start()  # back, empty
        ensure_topic(kafka, topic, partitions=4)
        send(kafka, spec, topic=topic)  # the devices send again
        totals = run(Settings(db=stream.db, kafka=kafka, topic=topic, idle_exit_s=2))
        with psycopg.connect(stream.db) as conn:
            assert counts(conn) == (10_000, 10_000)  # each reading once, none lost
        assert totals.stored == 10_000 - rows  # this run stored the rest
    finally:
        broker.stop()


def test_a_cluster_without_a_folder_of_its_own_leaves_nothing_behind() -> None:
    """A benchmark's PostgreSQL in a temporary folder: gone with the server (2 GB a run, otherwise)."""
    with Postgres(log_path=TEST_ARTIFACTS / "postgres-temporary.log") as database:
        folder = database.data_dir
        assert (folder / "PG_VERSION").exists()
    assert not folder.exists()
