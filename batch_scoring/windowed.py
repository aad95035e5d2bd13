"""Incremental scoring: the readings of one time window, for every series, from PostgreSQL.

``python -m batch_scoring score-window --window 2024-01-01T01:00/2024-01-01T02:00`` (a schedule
passes the hour that just closed) reads each series' aggregated intervals in the window plus the
``TAIL`` intervals before it that the causal features need (``batch_scoring.features``: a
reading's features depend on the previous 15 readings only), scores the window's intervals with
the series' model, and writes

- ``preds/date=YYYY-MM-DD/hour=HH/part-I-of-N.parquet``: the window's predictions for every series
  of shard I (one file: a file per series would cost more to write than the scoring), with the
  run id and the model version in the Parquet footer; rewritten whole by a rerun, so each series
  has exactly one set of predictions per window;
- the flagged intervals, upserted into the ``anomalies`` table for downstream use;
- ``preds/date=.../hour=.../_SUCCESS[.shard-I-of-N].json`` once every output is verified to be
  there, or ``_FAILED...json`` with what failed. A window whose success marker exists is not
  scored again; hour 2's run never touches hour 1's folder.

``--shard I/N`` scores the series whose key hashes to I (of N): shards write disjoint outputs and
their own markers. A window is scored only once it is closed: every partition of the topic has
seen readings later than its end plus the allowed lateness (``ingest.closed_before``).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from batch_scoring import features
from batch_scoring.events import parse_utc
from batch_scoring.model import OnnxModel, sha256
from batch_scoring.schema import MODEL_MANIFEST, Partition
from batch_scoring.score import OUTPUT_SCHEMA, PROVENANCE_KEY
from batch_scoring.storage import MissingBlob, Store

log = logging.getLogger(__name__)

TAIL = max(features.RESID_WINDOW, features.STD_WINDOW - 1)  # earlier intervals the features read
ANOMALIES = """
CREATE TABLE IF NOT EXISTS anomalies (
    device text NOT NULL, sensor text NOT NULL, ts timestamptz NOT NULL,
    value double precision NOT NULL, score double precision NOT NULL,
    model_sha256 text NOT NULL, run_id text NOT NULL, scored_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (device, sensor, ts));
"""


class WindowError(RuntimeError):
    """The window cannot be scored now (not closed yet, spans hours, no models)."""


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    @classmethod
    def parse(cls, text: str) -> Window:
        """``START/END`` in ISO 8601 (UTC when no zone), within one hour of the clock."""
        parts = text.split("/")
        if len(parts) != 2:
            raise ValueError(f"window {text!r} is not START/END")
        start, end = (parse_utc(p) for p in parts)
        if end <= start:
            raise ValueError(f"window {text!r} ends before it starts")
        if end - start > timedelta(hours=1) or (end - timedelta(microseconds=1)).hour != start.hour:
            raise ValueError(f"window {text!r} spans more than one hour of the clock (outputs are hourly)")
        return cls(start, end)

    @property
    def prefix(self) -> str:
        return f"date={self.start:%Y-%m-%d}/hour={self.start:%H}"

    def __str__(self) -> str:
        return f"{self.start.isoformat()}/{self.end.isoformat()}"


def closed_hours(closed: datetime | None, hours: int) -> list[Window]:
    """The ``hours`` latest whole clock hours that end before ``closed``, oldest first."""
    if closed is None or hours < 1:
        return []
    end = closed.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    return [Window(end - timedelta(hours=h + 1), end - timedelta(hours=h)) for h in reversed(range(hours))]


@dataclass(frozen=True)
class Shard:
    index: int = 0
    count: int = 1

    @classmethod
    def parse(cls, text: str) -> Shard:
        index, _, count = text.partition("/")
        shard = cls(int(index), int(count or 1))
        if not 0 <= shard.index < shard.count:
            raise ValueError(f"shard {text!r}: I/N with 0 <= I < N")
        return shard

    def holds(self, key: str) -> bool:
        """A stable hash (not CRC32: its low bits barely differ between ``D000/S01`` and the like)."""
        digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") % self.count == self.index

    def marker(self, outcome: str) -> str:
        return (
            f"_{outcome}.json" if self.count == 1 else f"_{outcome}.shard-{self.index}-of-{self.count}.json"
        )

    def output(self) -> str:
        """The shard's predictions file: every series of the shard, the window's intervals."""
        return f"part-{self.index}-of-{self.count}.parquet"


@dataclass
class Outcome:
    window: str
    shard: str
    run_id: str
    models: str  # the model manifest's checksum: the version this run used throughout
    status: str = "scored"  # scored | skipped (already done) | failed
    series: int = 0
    rows: int = 0
    anomalies: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def intervals(
    conn: Any, window: Window, width: timedelta
) -> Iterator[tuple[Partition, np.ndarray, np.ndarray]]:
    """Each series with readings in the window: its interval starts and means, the tail first.
    One query for all series (a round trip per series would cost more than the scoring), on the
    primary key, window first (so the cost follows the window, not the history), each series' values
    as one text list that NumPy parses (a Python object per interval would dominate the run)."""
    since = window.start - 2 * TAIL * width  # twice the tail: room for a few missing intervals
    rows = conn.execute(
        "SELECT device, sensor, "
        "string_agg((extract(epoch FROM window_start) * 1000000)::bigint::text, ',' ORDER BY window_start), "
        "string_agg(mean::text, ',' ORDER BY window_start) "
        "FROM readings_agg WHERE window_start >= %(since)s AND window_start < %(end)s "
        "GROUP BY device, sensor HAVING max(window_start) >= %(start)s ORDER BY device, sensor",
        {"since": since, "start": window.start, "end": window.end},
    )
    start = np.datetime64(window.start.replace(tzinfo=None), "us")
    for device, sensor, times, values in rows:
        stamps = np.array(times.split(","), dtype=np.int64).astype("datetime64[us]")
        means = np.array(values.split(","), dtype=np.float64)
        first = int(np.argmax(stamps >= start))
        keep = slice(max(0, first - TAIL), None)
        yield Partition(device, sensor), stamps[keep], means[keep]


def score_series(model: OnnxModel, feature_set: str, stamps: np.ndarray, means: np.ndarray, start: datetime):
    """Predictions for the intervals from ``start`` on; the tail before it is context only."""
    x = features.compute(means, feature_set)
    prediction, score = model.predict(x)
    inside = stamps >= np.datetime64(start.replace(tzinfo=None), "us")
    return stamps[inside], means[inside], prediction[inside], score[inside]


def parquet(columns: dict[str, np.ndarray], info: dict) -> bytes:
    """One window's predictions for one shard, every series in it, with the run's provenance."""
    table = pa.Table.from_arrays(
        [
            pa.array(columns["ts"], pa.timestamp("us")),
            pa.array(columns["device"], pa.string()),
            pa.array(columns["sensor"], pa.string()),
            pa.array(columns["value"], pa.float64()),
            pa.array(columns["prediction"], pa.int8()),
            pa.array(columns["score"], pa.float64()),
        ],
        schema=OUTPUT_SCHEMA.with_metadata({PROVENANCE_KEY: json.dumps(info).encode()}),
    )
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="snappy")
    return buf.getvalue()


Job = tuple[str, str, np.ndarray, np.ndarray, dict]  # device, sensor, interval starts, means, model entry
_MODELS: Store | None = None


def _open_models(spec: Any) -> None:
    global _MODELS
    from batch_scoring.lifetime import die_with_parent

    die_with_parent()  # the forkserver, which exits with the run
    _MODELS = spec.open()


def score_chunk(jobs: list[Job], start: datetime, store: Store | None = None) -> list[tuple]:
    """Score series with their models; per series ``(key, arrays)`` or ``(key, error)``. Runs in
    a worker process (models read from the store it opened) or in the caller's."""
    store = store or _MODELS
    assert store is not None
    done = []
    for device, sensor, stamps, means, entry in jobs:
        key = f"{device}/{sensor}"
        try:
            model = OnnxModel(store.models.read_bytes(entry["blob"]), expected_sha256=entry["sha256"])
            feature_set = model.metadata.get("features", entry["config"]["features"])
            done.append((key, score_series(model, feature_set, stamps, means, start)))
        except (ValueError, MissingBlob, RuntimeError) as exc:
            done.append((key, f"{type(exc).__name__}: {exc}"))
    return done


def score_shard(
    conn: Any,
    store: Store,
    window: Window,
    width: timedelta,
    shard: Shard,
    manifest: dict,
    outcome: Outcome,
    pool: Any = None,
) -> str:
    """Score every series of the shard (in ``pool``'s workers when given), write the shard's
    predictions as one file and its anomalies in one transaction; returns the file's name.
    A series that cannot be scored is recorded in ``outcome.failed``."""
    jobs: list[Job] = []
    for part, stamps, means in intervals(conn, window, width):
        if not shard.holds(part.key):
            continue
        outcome.series += 1
        entry = manifest.get("models", {}).get(part.key)
        if entry is None:
            outcome.failed[part.key] = f"no model for {part.key}"
        else:
            jobs.append((part.device, part.sensor, stamps, means, entry))
    if pool is None:
        results = score_chunk(jobs, window.start, store)
    else:
        size = max(1, len(jobs) // (4 * pool._max_workers) + 1)
        chunks = [jobs[i : i + size] for i in range(0, len(jobs), size)]
        results = [r for got in pool.map(score_chunk, chunks, [window.start] * len(chunks)) for r in got]
    parts: dict[str, list] = {k: [] for k in ("ts", "device", "sensor", "value", "prediction", "score")}
    for key, got in results:
        if isinstance(got, str):
            outcome.failed[key] = got
            continue
        ts, values, pred, score = got
        device, sensor = key.split("/")
        for name, column in zip(
            parts, (ts, [device] * len(ts), [sensor] * len(ts), values, pred, score), strict=True
        ):
            parts[name].append(column)
    empty = {"ts": "datetime64[us]", "device": object, "sensor": object, "prediction": np.int8}
    columns = {k: np.concatenate(v) if v else np.array([], empty.get(k, float)) for k, v in parts.items()}
    columns["prediction"] = columns["prediction"].astype(np.int8)
    outcome.rows, outcome.anomalies = len(columns["ts"]), int(columns["prediction"].sum())
    info = {"window": str(window), "run_id": outcome.run_id, "models": outcome.models, "rows": outcome.rows}
    name = f"{window.prefix}/{shard.output()}"
    store.preds.write_bytes(name, parquet(columns, info))
    flagged = np.flatnonzero(columns["prediction"])
    with conn.transaction(), conn.cursor() as cur:
        conn.execute("CREATE TEMP TABLE flagged (LIKE anomalies INCLUDING DEFAULTS) ON COMMIT DROP")
        with cur.copy(
            "COPY flagged (device, sensor, ts, value, score, model_sha256, run_id) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["text", "text", "timestamptz", "float8", "float8", "text", "text"])
            # Whole columns to Python at once: per-element NumPy conversions cost more than the copy.
            devices, sensors = columns["device"][flagged].tolist(), columns["sensor"][flagged].tolist()
            times = columns["ts"][flagged].astype("datetime64[us]").tolist()
            values, scores = columns["value"][flagged].tolist(), columns["score"][flagged].tolist()
            shas = {key: entry["sha256"] for key, entry in manifest["models"].items()}
            for device, sensor, when, value, score in zip(
                devices, sensors, times, values, scores, strict=True
            ):
                row = (device, sensor, when.replace(tzinfo=UTC), value, score)
                copy.write_row((*row, shas[f"{device}/{sensor}"], outcome.run_id))
        cur.execute(
            "INSERT INTO anomalies (device, sensor, ts, value, score, model_sha256, run_id) "
            "SELECT device, sensor, ts, value, score, model_sha256, run_id FROM flagged "
            "ON CONFLICT (device, sensor, ts) DO UPDATE SET value = EXCLUDED.value, score = EXCLUDED.score, "
            "model_sha256 = EXCLUDED.model_sha256, run_id = EXCLUDED.run_id, scored_at = now()"
        )
    return name


def score_window(
    conn: Any,
    store: Store,
    window: Window,
    *,
    width: timedelta = timedelta(minutes=1),
    shard: Shard = Shard(),
    force: bool = False,
    pool: Any = None,
) -> Outcome:
    """Score one window (one shard of it) from the aggregates in ``conn`` into ``store``; with a
    ``pool`` (:func:`worker_pool`), the models run in its worker processes."""
    started = time.monotonic()
    manifest_bytes = store.models.read_bytes(MODEL_MANIFEST)  # read once: this run's version
    manifest = json.loads(manifest_bytes)
    outcome = Outcome(
        str(window), f"{shard.index}/{shard.count}", uuid.uuid4().hex[:12], sha256(manifest_bytes)
    )
    done = f"{window.prefix}/{shard.marker('SUCCESS')}"
    if not force and store.preds.exists(done):
        outcome.status = "skipped"
        log.info("window %s shard %s already scored (%s)", window, outcome.shard, done)
        return outcome
    conn.execute(ANOMALIES)
    try:
        written = score_shard(conn, store, window, width, shard, manifest, outcome, pool)
    except (WindowError, ValueError, MissingBlob):
        raise
    except Exception as exc:  # storage or database gone: stop at once, say so, leave a marker if possible
        outcome.status, outcome.seconds = "failed", time.monotonic() - started
        outcome.failed["run"] = f"{type(exc).__name__}: {exc}"
        with contextlib.suppress(Exception):
            marker = f"{window.prefix}/{shard.marker('FAILED')}"
            store.preds.write_bytes(marker, json.dumps(outcome.as_dict(), indent=1).encode())
        raise WindowError(
            f"window {window} shard {outcome.shard} stopped: {type(exc).__name__}: {exc}"
        ) from exc
    if not store.preds.exists(written):
        outcome.failed[written] = "output missing after writing"
    outcome.seconds = time.monotonic() - started
    outcome.status = "failed" if outcome.failed else "scored"
    marker = shard.marker("FAILED" if outcome.failed else "SUCCESS")
    store.preds.write_bytes(f"{window.prefix}/{marker}", json.dumps(outcome.as_dict(), indent=1).encode())
    if not outcome.failed and store.preds.exists(stale := f"{window.prefix}/{shard.marker('FAILED')}"):
        store.preds.delete(stale)  # an earlier failed run of this window, now caught up
    log.info(
        "window %s shard %s: %s",
        window,
        outcome.shard,
        {k: v for k, v in outcome.as_dict().items() if k != "failed"},
    )
    return outcome


def worker_pool(spec: Any, workers: int) -> Any:
    """Worker processes that read models from the store ``spec`` describes. Forkserver, not fork:
    the parent holds a database connection and threads that a fork must not copy. A killed run
    leaves none behind: the forkserver exits with it, and each worker with the forkserver."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("forkserver")
    return ProcessPoolExecutor(workers, mp_context=context, initializer=_open_models, initargs=(spec,))


def export_series(conn: Any, store: Store, since: datetime, until: datetime) -> tuple[int, int]:
    """Each series' interval means in [since, until) as ``data/<device>/<sensor>.parquet``, the
    layout ``train`` reads; returns (series, rows)."""
    import pandas as pd

    from batch_scoring.generate import to_parquet_bytes
    from batch_scoring.schema import DEVICE, SENSOR, TS, VALUE

    frame = pd.DataFrame(
        conn.execute(
            "SELECT device, sensor, window_start, mean FROM readings_agg "
            "WHERE window_start >= %s AND window_start < %s ORDER BY device, sensor, window_start",
            [since, until],
        ).fetchall(),
        columns=[DEVICE, SENSOR, TS, VALUE],
    )
    if frame.empty:
        return 0, 0
    frame[TS] = pd.to_datetime(frame[TS], utc=True).dt.tz_localize(None)
    series = 0
    for (device, sensor), rows in frame.groupby([DEVICE, SENSOR], sort=False):
        part = Partition(device, sensor)
        store.data.write_bytes(part.data_blob(), to_parquet_bytes(rows[[TS, DEVICE, SENSOR, VALUE]]))
        series += 1
    return series, len(frame)
