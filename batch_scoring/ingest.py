"""Ingest: a Kafka consumer group that stores sensor readings in PostgreSQL exactly once and
aggregates them into fixed intervals (tumbling windows).

Per batch of messages, in one database transaction:

- valid readings go to ``readings`` (primary key ts, device, sensor, time first so that inserts
  append at the index's end: a reading delivered twice is stored once);
- every refused event goes to ``dead_letter`` with its reason and where it came from (topic,
  partition, offset, item), and ingestion goes on;
- the readings newly stored are added to their windows in ``readings_agg`` (count, sum, mean,
  min, max per device, sensor and window), so a late reading updates its window;
- each partition's next offset and watermark (the latest reading time seen) go to
  ``ingest_progress``.

Only after the commit are the offsets committed to the broker. The database is the record of
progress: on assignment the consumer starts each partition where ``ingest_progress`` says, so a
crash between the two commits replays nothing twice. A reading older than its partition's
watermark minus ``lateness`` is refused as late (unless the same value is already stored: then
it is a device's retry, a duplicate like any other; a second, different value for a stored
time is not stored either: the first one stands): once a window is older than that, it no longer
changes, and a scoring run can trust it (``closed_before``).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from batch_scoring.events import TOPIC, Reading, decode, utc_now

log = logging.getLogger(__name__)

ORIGIN = "2000-01-01 00:00:00+00"  # windows are aligned to this instant
SCHEMA = """
CREATE TABLE IF NOT EXISTS readings (
    device text COLLATE "C" NOT NULL, sensor text COLLATE "C" NOT NULL, ts timestamptz NOT NULL,
    value double precision NOT NULL,
    PRIMARY KEY (ts, device, sensor));
CREATE TABLE IF NOT EXISTS readings_agg (
    device text COLLATE "C" NOT NULL, sensor text COLLATE "C" NOT NULL, window_start timestamptz NOT NULL,
    readings integer NOT NULL, total double precision NOT NULL,
    mean double precision GENERATED ALWAYS AS (total / readings) STORED,
    min double precision NOT NULL, max double precision NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (window_start, device, sensor));
CREATE TABLE IF NOT EXISTS dead_letter (
    topic text NOT NULL, partition integer NOT NULL, "offset" bigint NOT NULL, item integer NOT NULL,
    key text, payload bytea, reason text NOT NULL, received_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, partition, "offset", item));
CREATE TABLE IF NOT EXISTS ingest_progress (
    topic text NOT NULL, partition integer NOT NULL, next_offset bigint NOT NULL,
    watermark timestamptz, PRIMARY KEY (topic, partition));
"""
# The readings newly stored (a duplicate is not returned) are added to their windows: one
# statement, no second read of the readings table, and a reading counts once however often it
# is delivered.
STORE = f"""
WITH new AS (INSERT INTO readings SELECT * FROM batch ON CONFLICT DO NOTHING RETURNING *),
windows AS (
INSERT INTO readings_agg AS a (device, sensor, window_start, readings, total, min, max)
SELECT device, sensor, date_bin(%(width)s, ts, TIMESTAMPTZ '{ORIGIN}'), count(*), sum(value),
       min(value), max(value)
FROM new GROUP BY 1, 2, 3
ON CONFLICT (device, sensor, window_start) DO UPDATE SET
    readings = a.readings + EXCLUDED.readings, total = a.total + EXCLUDED.total,
    min = least(a.min, EXCLUDED.min), max = greatest(a.max, EXCLUDED.max), updated_at = now())
SELECT count(*) FROM new
"""


@dataclass
class Settings:
    db: str
    kafka: dict[str, str]
    topic: str = TOPIC
    group: str = "ingest"
    window: timedelta = timedelta(minutes=1)
    lateness: timedelta = timedelta(minutes=10)
    batch: int = 5000  # messages per transaction at most
    idle_exit_s: float | None = None  # stop after this long without a message (None: run on)
    broker_timeout_s: float = 60.0  # give up when the broker stays unreachable this long
    db_timeout_s: float = 60.0  # the same for the database
    metrics: Any = None  # a batch_scoring.metrics.IngestMetrics to keep up to date


@dataclass
class Totals:
    messages: int = 0
    readings: int = 0
    stored: int = 0  # new rows; a replayed reading is not stored again
    dead: int = 0
    late: int = 0
    duplicates_late: int = 0  # late, but already stored: a retry, not parked
    batches: int = 0
    lag: int | None = None  # messages behind the topic's end at the last look (with metrics on)
    reasons: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def create_schema(conn: Any) -> None:
    with conn.transaction():
        conn.execute(SCHEMA)


def progress(conn: Any, topic: str) -> dict[int, tuple[int, datetime | None]]:
    """Each partition's next offset and watermark, as the last committed batch left them."""
    rows = conn.execute(
        "SELECT partition, next_offset, watermark FROM ingest_progress WHERE topic = %s", [topic]
    )
    return {p: (offset, mark) for p, offset, mark in rows}


def closed_before(conn: Any, topic: str, lateness: timedelta) -> datetime | None:
    """Windows ending before this instant can no longer change (every partition's watermark,
    less the lateness, is past them); None before any reading arrived."""
    row = conn.execute("SELECT min(watermark) FROM ingest_progress WHERE topic = %s", [topic]).fetchone()
    return None if row is None or row[0] is None else row[0] - lateness


@dataclass
class Batch:
    """One batch judged: rows to store, refusals to park, the progress it makes per partition."""

    rows: list[Reading] = field(default_factory=list)
    dead: list[tuple] = field(default_factory=list)  # dead_letter rows
    kinds: list[str] = field(default_factory=list)  # each one's kind of refusal
    late: list[tuple[Reading, tuple]] = field(default_factory=list)  # with its dead_letter row
    ends: dict[int, int] = field(default_factory=dict)  # partition -> next offset


def judge(messages: list[Any], marks: dict[int, datetime | None], lateness: timedelta, topic: str) -> Batch:
    """Decode and check every message; moves each partition's watermark in ``marks``."""
    batch, now = Batch(), utc_now()
    for msg in messages:
        part, offset = msg.partition(), msg.offset()
        readings, rejected = decode(msg.value(), msg.key(), now)
        key = msg.key().decode(errors="replace") if msg.key() is not None else None
        for refused in rejected:
            batch.dead.append((topic, part, offset, refused.item, key, msg.value(), refused.reason))
            batch.kinds.append(refused.kind)
        mark = marks.get(part)
        for index, reading in enumerate(readings):
            if mark is not None and reading.ts < mark - lateness:
                reason = f"late: {reading.ts.isoformat()} is more than {lateness} behind {mark.isoformat()}"
                batch.late.append(
                    (reading, (topic, part, offset, len(rejected) + index, key, msg.value(), reason))
                )
            else:
                batch.rows.append(reading)
        if readings:
            newest = max(r.ts for r in readings)
            marks[part] = newest if mark is None else max(mark, newest)
        batch.ends[part] = offset + 1
    return batch


def write(conn: Any, batch: Batch, marks: dict[int, datetime | None], settings: Settings) -> tuple[int, int]:
    """Store one judged batch in one transaction; returns the readings newly stored and the
    late ones parked (a late reading already stored is a retry and is dropped)."""
    with conn.transaction():
        conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS batch (device text, sensor text, ts timestamptz, "
            "value double precision) ON COMMIT DELETE ROWS"
        )
        with conn.cursor().copy("COPY batch (device, sensor, ts, value) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["text", "text", "timestamptz", "float8"])  # no text to format and parse
            for reading in batch.rows:
                copy.write_row(reading)
        (stored,) = conn.execute(STORE, {"width": settings.window}).fetchone()
        if batch.dead:
            with conn.cursor() as cur:
                cur.executemany(
                    'INSERT INTO dead_letter (topic, partition, "offset", item, key, payload, reason) '
                    "VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                    batch.dead,
                )
        parked = 0
        for reading, row in batch.late:
            parked += conn.execute(
                'INSERT INTO dead_letter (topic, partition, "offset", item, key, payload, reason) '
                "SELECT %s, %s, %s, %s, %s, %s, %s WHERE NOT EXISTS (SELECT 1 FROM readings "
                "WHERE device = %s AND sensor = %s AND ts = %s AND value = %s) ON CONFLICT DO NOTHING",
                [*row, reading.device, reading.sensor, reading.ts, reading.value],
            ).rowcount
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO ingest_progress (topic, partition, next_offset, watermark) "
                "VALUES (%s, %s, %s, %s) ON CONFLICT (topic, partition) DO UPDATE SET "
                "next_offset = EXCLUDED.next_offset, watermark = EXCLUDED.watermark",
                [(settings.topic, p, end, marks.get(p)) for p, end in batch.ends.items()],
            )
    return stored, parked


class Stop:
    """SIGTERM or SIGINT: finish the batch in hand, commit, leave the group, exit."""

    def __init__(self) -> None:
        self.requested = False
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._set)

    def _set(self, *_: object) -> None:
        self.requested = True


class IngestError(RuntimeError):
    """The broker or the database stayed unreachable past its timeout."""


class Database:
    """One connection, opened again when it breaks; gives up after ``timeout_s`` without one.
    Autocommit: each ``conn.transaction()`` is a real transaction, committed at its end (in
    psycopg's default mode, the first query would open one that only the exit commits)."""

    def __init__(self, url: str, timeout_s: float) -> None:
        self.url, self.timeout_s, self.conn = url, timeout_s, None

    def call(self, work: Any) -> Any:
        import psycopg

        failing_since = None
        while True:
            try:
                if self.conn is None or self.conn.closed:
                    self.conn = psycopg.connect(self.url, autocommit=True, connect_timeout=5)
                return work(self.conn)
            except psycopg.OperationalError as exc:
                failing_since = failing_since or time.monotonic()
                if time.monotonic() - failing_since > self.timeout_s:
                    raise IngestError(
                        f"the database is unreachable for {self.timeout_s:.0f} s: {exc}"
                    ) from exc
                log.warning("database: %s; trying again", str(exc).strip().splitlines()[0])
                if self.conn is not None:
                    self.conn.close()
                time.sleep(1)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


def close_within(consumer: Any, seconds: float) -> None:
    """Leave the group, waiting at most ``seconds``: with the broker gone, librdkafka's close
    waits for the offset commits still in flight and would hold the exit for minutes. The group
    then notices the member's absence by its session timeout instead."""
    closing = threading.Thread(target=consumer.close, name="consumer-close", daemon=True)
    closing.start()
    closing.join(seconds)
    if closing.is_alive():
        log.warning("the consumer did not close within %.0f s (broker gone?); leaving without it", seconds)


def run(settings: Settings) -> Totals:
    """Consume until stopped (or idle for ``idle_exit_s``); returns the totals of this run.
    :class:`IngestError` when the broker or the database stays away past its timeout: what was
    committed is kept, and a later run goes on from there."""
    from confluent_kafka import Consumer, KafkaException, TopicPartition

    totals, stop, db = Totals(), Stop(), Database(settings.db, settings.db_timeout_s)
    db.call(create_schema)
    marks: dict[int, datetime | None] = {
        p: m for p, (_, m) in db.call(lambda c: progress(c, settings.topic)).items()
    }
    clock = {"idle_since": float("inf"), "logged": time.monotonic(), "broker_ok": time.monotonic()}

    def assigned(consumer: Any, partitions: list[Any]) -> None:
        current = db.call(lambda c: progress(c, settings.topic))  # the database says where each stands
        for tp in partitions:
            if tp.partition in current:
                tp.offset = current[tp.partition][0]
                marks[tp.partition] = current[tp.partition][1]
        consumer.assign(partitions)
        clock["idle_since"] = clock["broker_ok"] = time.monotonic()  # joining is not idleness
        log.info("assigned %s", [(tp.partition, tp.offset) for tp in partitions])

    def broker_reachable(consumer: Any) -> None:
        """When no message comes, ask the broker for the topic now and then; past the timeout
        without an answer, give up (librdkafka alone would retry forever)."""
        now = time.monotonic()
        if now - clock["broker_ok"] < min(5.0, settings.broker_timeout_s / 2):
            return
        try:
            consumer.list_topics(settings.topic, timeout=min(5.0, settings.broker_timeout_s))
            clock["broker_ok"] = time.monotonic()
        except KafkaException as exc:
            if time.monotonic() - clock["broker_ok"] > settings.broker_timeout_s:
                raise IngestError(
                    f"the broker is unreachable for {settings.broker_timeout_s:.0f} s: {exc}"
                ) from exc

    def committed(err: Any, _partitions: list[Any]) -> None:
        if err is not None and not clock.get("commit_failing"):
            log.warning("offset commit failed (the database has the offsets): %s", err)
        clock["commit_failing"] = err is not None

    consumer = Consumer(
        {
            "on_commit": committed,
            "group.id": settings.group,
            "enable.auto.commit": "false",
            "auto.offset.reset": "earliest",
            "enable.partition.eof": "false",
            "session.timeout.ms": "6000",  # the local broker joins a group in about half this
            "heartbeat.interval.ms": "500",
            **settings.kafka,
        }
    )
    consumer.subscribe([settings.topic], on_assign=assigned)
    try:
        while not stop.requested:
            messages = consumer.consume(num_messages=settings.batch, timeout=1.0)
            for m in messages:
                if m.error() is not None and m.error().fatal():
                    raise KafkaException(m.error())
                if m.error() is not None:
                    log.warning("broker: %s", m.error())
            messages = [m for m in messages if m.error() is None]
            if not messages:
                broker_reachable(consumer)
                idle = time.monotonic() - clock["idle_since"]
                if settings.idle_exit_s is not None and idle > settings.idle_exit_s:
                    break
                continue
            clock["idle_since"] = clock["broker_ok"] = time.monotonic()
            batch = judge(messages, marks, settings.lateness, settings.topic)
            stored, parked = db.call(lambda c, b=batch: write(c, b, marks, settings))
            # The database already holds this progress, so the broker's copy is committed without
            # waiting: a synchronous commit blocks for seconds once the broker is gone, batch after
            # batch of what was fetched before, and the broker timeout would never be reached.
            offsets = [TopicPartition(settings.topic, p, end) for p, end in batch.ends.items()]
            with contextlib.suppress(KafkaException):  # a full queue: the next batch commits more
                consumer.commit(offsets=offsets, asynchronous=True)
            kinds = [*batch.kinds, *["late"] * parked]  # each dead letter's kind
            account(totals, batch, len(messages), stored, kinds)
            if settings.metrics is not None:
                known = [m for m in marks.values() if m is not None]
                settings.metrics.add(len(messages), stored, kinds, min(known, default=None))
            if time.monotonic() - clock["logged"] > 10:
                if settings.metrics is not None:
                    from batch_scoring.metrics import consumer_lag

                    settings.metrics.lag.set(lag := consumer_lag(consumer))
                    totals.lag = lag
                log.info("ingest: %s", totals.as_dict())
                clock["logged"] = time.monotonic()
    finally:
        close_within(consumer, min(10.0, settings.broker_timeout_s))
        db.close()
    log.info("ingest done: %s", totals.as_dict())
    return totals


def account(totals: Totals, batch: Batch, messages: int, stored: int, kinds: list[str]) -> None:
    """Add one batch to the run's totals; ``kinds``: each dead letter's kind, the late included."""
    parked = len(kinds) - len(batch.dead)
    totals.messages += messages
    totals.readings += len(batch.rows) + len(batch.late)
    totals.stored += stored
    totals.dead += len(kinds)
    totals.late += parked
    totals.duplicates_late += len(batch.late) - parked
    totals.batches += 1
    for kind in kinds:
        totals.reasons[kind] = totals.reasons.get(kind, 0) + 1
