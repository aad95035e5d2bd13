"""Streaming ingestion through the real broker into the real PostgreSQL: every reading stored
once with its interval aggregates, every bad event parked with its reason, late readings judged
against the watermark, and a killed ingester that loses and duplicates nothing."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import psycopg
from confluent_kafka import Producer

from batch_scoring.events import Reading, encode
from batch_scoring.generate import GenSpec
from batch_scoring.ingest import Settings, closed_before, create_schema, run
from batch_scoring.metrics import IngestMetrics
from batch_scoring.produce import send
from tests.integration.batch_scoring.conftest import REPO, TEST_ARTIFACTS, Stream

START = datetime(2024, 1, 1, tzinfo=UTC)


def ingest(stream: Stream, **options: object) -> dict:
    settings = Settings(db=stream.db, kafka=stream.kafka, topic=stream.topic, idle_exit_s=2.0, **options)
    return run(settings).as_dict()


def query(stream: Stream, sql: str) -> list[tuple]:
    with psycopg.connect(stream.db) as conn:
        return list(conn.execute(sql))


def produce_raw(stream: Stream, messages: list[tuple[bytes, bytes | None]]) -> None:
    producer = Producer(stream.kafka)
    for value, key in messages:
        producer.produce(stream.topic, value, key)
    assert producer.flush(30) == 0


def test_readings_are_stored_once_aggregated_and_bad_events_parked(stream: Stream) -> None:
    spec = GenSpec(devices=2, sensors=3, readings=30, seed=11)
    send(stream.kafka, spec, topic=stream.topic, per_message=4)  # 8 messages per series
    good = {"device": "D000", "sensor": "S00", "ts": "2024-01-01T00:40:00Z", "value": 1.0}
    bad = [
        (b"{not json", b"D000/S00"),
        (json.dumps({"device": "D000", "sensor": "S00"}).encode(), b"D000/S00"),
        (json.dumps({**good, "value": "warm"}).encode(), b"D000/S00"),
        (json.dumps({**good, "ts": "2999-01-01T00:00:00Z"}).encode(), b"D000/S00"),
        (json.dumps([good, {**good, "ts": 1e20}]).encode(), b"D000/S00"),  # one good, one bad
    ]
    produce_raw(stream, bad)
    metrics = IngestMetrics()
    totals = ingest(stream, metrics=metrics)
    assert totals["stored"] == 180 + 1 and totals["dead"] == 5
    sample = metrics.registry.get_sample_value
    assert (
        sample("sensor_ingest_readings_stored_total") == 181 and sample("sensor_ingest_messages_total") == 53
    )
    assert sample("sensor_ingest_dead_letters_total", {"kind": "not JSON"}) == 1
    assert totals["reasons"] == {
        "not JSON": 1,
        "missing field": 1,
        "wrong type": 1,
        "in the future": 1,
        "bad time": 1,
    }
    assert query(stream, "SELECT count(*), count(DISTINCT (device, sensor)) FROM readings") == [(181, 6)]
    # one reading a minute, one-minute windows: one window per reading, its mean the reading
    windows = query(
        stream,
        "SELECT count(*), sum(a.readings), max(abs(a.mean - r.value)) FROM readings_agg a "
        "JOIN readings r ON (r.device, r.sensor, r.ts) = (a.device, a.sensor, a.window_start)",
    )
    assert windows[0][:2] == (181, 181) and windows[0][2] < 1e-9
    dead = query(stream, 'SELECT "offset", item, reason FROM dead_letter ORDER BY "offset", item')
    assert [d[1] for d in dead] == [0, 0, 0, 0, 1] and "not JSON" in dead[0][2]
    messages = query(stream, "SELECT sum(next_offset) FROM ingest_progress")[0][0]
    assert messages == 6 * 8 + len(bad)  # every message accounted for, each partition's next offset

    # The same readings again (a device's retry) and a second ingester run: nothing new.
    send(stream.kafka, spec, topic=stream.topic, per_message=4)
    again = ingest(stream)
    assert again["messages"] == 48 and again["stored"] == 0 and again["dead"] == 0
    assert again["duplicates_late"] == 158  # behind the watermark, but already stored: retries
    assert query(stream, "SELECT count(*) FROM readings") == [(181,)]


def test_late_readings_update_their_window_within_the_lateness_and_are_parked_beyond_it(
    stream: Stream,
) -> None:
    send(stream.kafka, GenSpec(devices=1, sensors=1, readings=30, seed=2), topic=stream.topic)
    lateness = timedelta(minutes=10)
    ingest(stream, lateness=lateness)  # watermark: 00:29
    with psycopg.connect(stream.db) as conn:
        assert closed_before(conn, stream.topic, lateness) == START + timedelta(minutes=19)
    within = Reading("D000", "S00", START + timedelta(minutes=20, seconds=30), 1000.0)
    beyond = Reading("D000", "S00", START + timedelta(minutes=18), 1000.0)
    produce_raw(stream, [(encode([r]), r.key.encode()) for r in (within, beyond)])
    totals = ingest(stream, lateness=lateness)
    assert totals["stored"] == 1 and totals["reasons"] == {"late": 1}
    window = query(
        stream, "SELECT readings, max FROM readings_agg WHERE window_start = '2024-01-01 00:20+00'"
    )
    assert window == [(2, 1000.0)]  # the window took the late reading in
    assert query(stream, "SELECT count(*) FROM readings WHERE value = 1000") == [(1,)]


def test_a_killed_ingester_restarts_where_the_database_says_without_loss_or_duplicates(
    stream: Stream,
) -> None:
    spec = GenSpec(devices=10, sensors=10, readings=100, seed=4)  # 10,000 readings
    send(stream.kafka, spec, topic=stream.topic)
    with psycopg.connect(stream.db) as conn:
        create_schema(conn)  # as the ingester does first, so that the count below can be read
    command = [sys.executable, "-m", "batch_scoring", "ingest", "--db", stream.db, "--topic", stream.topic]
    command += ["--bootstrap", stream.kafka["bootstrap.servers"], "--batch", "20"]
    log = (TEST_ARTIFACTS / "ingest-killed.log").open("w")
    ingester = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        stored = 0
        while stored < 1000 and time.monotonic() < deadline:
            time.sleep(0.05)
            stored = query(stream, "SELECT count(*) FROM readings")[0][0]
        ingester.send_signal(signal.SIGKILL)  # mid-stream: no chance to commit anything else
        ingester.wait(10)
    finally:
        if ingester.poll() is None:
            ingester.kill()
    partial = query(stream, "SELECT count(*) FROM readings")[0][0]
    assert 1000 <= partial < 10_000, partial
    totals = ingest(stream)
    assert totals["stored"] == 10_000 - partial  # the rest, and nothing twice
    rows = query(stream, "SELECT count(*), count(DISTINCT (device, sensor, ts)) FROM readings")
    assert rows == [(10_000, 10_000)]
    assert query(stream, "SELECT sum(readings) FROM readings_agg") == [(10_000,)]
    assert query(stream, "SELECT count(*) FROM dead_letter") == [(0,)]
