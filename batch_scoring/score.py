"""Scoring entry script with the Azure ML parallel contract: `init()` once per process, then
`run(mini_batch)` per mini-batch.

On Azure ML, `mini_batch` is a list of file paths from the mounted `data` uri_folder and the
models/output folders arrive as program arguments. The local runner (`batch_scoring.runner`)
and the Kubernetes CronJob call these same two functions in their worker processes with
partition keys (`D000/S00`) and a `--store`.

Per partition: read the series, look the model up in the manifest, skip if the existing output
was produced from the same input and model bytes (idempotent reruns), otherwise verify the model
checksum, predict, and write `TS, Device, Sensor, Value, Prediction, Score` atomically as
`preds/<device>/<sensor>.parquet`, with provenance in the Parquet footer.

`run()` returns one row per partition that succeeded. A failed partition is left out of the
result (Azure ML counts missing items against `error_threshold`), logged, and its reason is kept
in `LAST_ERRORS` for the local runner's report and retries.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from batch_scoring import dataio, features
from batch_scoring.model import OnnxModel, sha256
from batch_scoring.schema import (
    DATA_SUFFIXES,
    DEVICE,
    MODEL_MANIFEST,
    PREDICTION,
    SCORE,
    SENSOR,
    TS,
    VALUE,
    Partition,
)
from batch_scoring.storage import MissingBlob, Store, StoreSpec

log = logging.getLogger("batch_scoring.score")

OUTPUT_SCHEMA = pa.schema(
    [
        (TS, pa.timestamp("us")),
        (DEVICE, pa.string()),
        (SENSOR, pa.string()),
        (VALUE, pa.float64()),
        (PREDICTION, pa.int8()),
        (SCORE, pa.float64()),
    ]
)
PROVENANCE_KEY = b"batch_scoring"
RESULT_COLUMNS = [
    "partition",
    "status",
    "rows",
    "anomalies",
    "model_id",
    "input_sha256",
    "t_read",
    "t_model",
    "t_predict",
    "t_write",
]


class PartitionError(RuntimeError):
    """A partition that cannot be scored (missing model, mismatching metadata, ...)."""


@dataclass
class Context:
    store: Store
    manifest: dict
    force: bool = False
    data_root: Path | None = None  # set when data is a mounted folder (Azure ML)


_CTX: Context | None = None
LAST_ERRORS: dict[str, str] = {}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="batch_scoring entry script")
    # Azure ML: three mounted folders.
    p.add_argument("--data_dir")
    p.add_argument("--models_dir")
    p.add_argument("--output_dir")
    # Local runner / Kubernetes: one store spec (see storage.StoreSpec.parse).
    p.add_argument("--store", default=os.environ.get("BATCH_SCORING_STORE"))
    p.add_argument("--prefix", default=os.environ.get("BATCH_SCORING_PREFIX", ""))
    p.add_argument("--force", action="store_true", default=os.environ.get("BATCH_SCORING_FORCE") == "1")
    # parse_known_args: Azure ML adds its own arguments (--error_threshold, ...) to the command.
    args, _unknown = p.parse_known_args(argv)
    return args


def init(argv: list[str] | None = None) -> None:
    """Open the store and load the model manifest once per worker process."""
    global _CTX
    import onnxruntime  # noqa: F401 - imported here, not inside the first partition's timing

    args = parse_args(argv)
    data_root = None
    if args.data_dir and args.models_dir and args.output_dir:
        spec = StoreSpec.from_folders(args.data_dir, args.models_dir, args.output_dir)
        data_root = Path(args.data_dir).resolve()
    elif args.store:
        spec = StoreSpec.parse(args.store, prefix=args.prefix)
    else:
        raise RuntimeError(
            "init(): pass --data_dir/--models_dir/--output_dir or --store (or set $BATCH_SCORING_STORE)"
        )
    store = spec.open()
    try:
        manifest = json.loads(store.models.read_bytes(MODEL_MANIFEST))
    except MissingBlob as exc:
        raise RuntimeError(f"no model manifest in {store.models.describe()}: run `train` first") from exc
    _CTX = Context(store=store, manifest=manifest, force=args.force, data_root=data_root)
    log.info("init: %s, %d models", spec.describe(), len(manifest.get("models", {})))


def run(mini_batch: list[str]) -> pd.DataFrame:
    """Score each partition of the mini-batch; one result row per success."""
    if _CTX is None:
        raise RuntimeError("run() before init()")
    LAST_ERRORS.clear()
    rows = []
    for item in mini_batch:
        key = str(item)
        try:
            part = partition_of(item, _CTX.data_root)
            if part is None:  # manifest.json, a combined CSV...: not a partition, not a failure
                rows.append({"partition": key, "status": "ignored", "rows": 0, "anomalies": 0})
                continue
            key = part.key
            rows.append(score_partition(_CTX, part))
        except Exception as exc:  # one bad partition must not sink the mini-batch
            LAST_ERRORS[key] = f"{type(exc).__name__}: {exc}"
            log.error("partition %s failed: %s", key, LAST_ERRORS[key])
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def partition_of(item: str, data_root: Path | None) -> Partition | None:
    """The partition an item names, or None for files of the data folder that are not one.

    Items are keys (`D000/S00`, local runner) or file paths inside the mounted data folder
    (Azure ML lists every file of the uri_folder, manifest included).
    """
    path = Path(str(item))
    if path.is_absolute():
        if data_root is not None:
            try:
                path = path.resolve().relative_to(data_root)
            except ValueError:
                return None
            if len(path.parts) != 2:
                return None
        if path.suffix not in DATA_SUFFIXES:
            return None
    elif path.suffix and path.suffix not in DATA_SUFFIXES:
        return None
    return Partition.parse(path.as_posix())


def provenance(payload: bytes) -> dict | None:
    """The provenance stored in an output's Parquet footer, or None if unreadable."""
    try:
        meta = pq.read_schema(io.BytesIO(payload)).metadata or {}
        return json.loads(meta[PROVENANCE_KEY]) if PROVENANCE_KEY in meta else None
    except Exception:  # a foreign or damaged file: treat as absent and overwrite
        return None


def score_partition(ctx: Context, part: Partition) -> dict:
    t0 = time.perf_counter()
    data_name, payload = dataio.read_partition_bytes(ctx.store.data, part)
    input_sha = sha256(payload)
    entry = ctx.manifest.get("models", {}).get(part.key)
    if entry is None:
        raise PartitionError(f"no model for {part.key} in the manifest")

    if not ctx.force:
        try:
            prev = provenance(ctx.store.preds.read_bytes(part.pred_blob))
        except MissingBlob:
            prev = None
        if prev and prev.get("input_sha256") == input_sha and prev.get("model_sha256") == entry["sha256"]:
            return {
                "partition": part.key,
                "status": "skipped",
                "rows": prev.get("rows", 0),
                "anomalies": prev.get("anomalies", 0),
                "model_id": entry["model_id"],
                "input_sha256": input_sha,
                "t_read": time.perf_counter() - t0,
                "t_model": 0.0,
                "t_predict": 0.0,
                "t_write": 0.0,
            }

    ts, values = dataio.read_series(data_name, payload)
    t1 = time.perf_counter()
    model = OnnxModel(ctx.store.models.read_bytes(entry["blob"]), expected_sha256=entry["sha256"])
    meta = model.metadata
    if (meta.get("device"), meta.get("sensor")) != (part.device, part.sensor):
        raise PartitionError(f"model {entry['blob']} is for {meta.get('device')}/{meta.get('sensor')}")
    t2 = time.perf_counter()
    x = features.compute(values, meta.get("features", entry["config"]["features"]))
    prediction, score = model.predict(x)
    t3 = time.perf_counter()

    n = len(values)
    info = {
        "partition": part.key,
        "input_blob": data_name,
        "input_sha256": input_sha,
        "model_id": entry["model_id"],
        "model_sha256": entry["sha256"],
        "rows": n,
        "anomalies": int(prediction.sum()),
        "scored_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    table = pa.Table.from_arrays(
        [
            ts,
            pa.array(np.full(n, part.device, dtype=object), pa.string()),
            pa.array(np.full(n, part.sensor, dtype=object), pa.string()),
            pa.array(values, pa.float64()),
            pa.array(prediction, pa.int8()),
            pa.array(score, pa.float64()),
        ],
        schema=OUTPUT_SCHEMA.with_metadata({PROVENANCE_KEY: json.dumps(info).encode()}),
    )
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="snappy")
    ctx.store.preds.write_bytes(part.pred_blob, buf.getvalue())
    t4 = time.perf_counter()
    return {
        "partition": part.key,
        "status": "scored",
        "rows": n,
        "anomalies": info["anomalies"],
        "model_id": entry["model_id"],
        "input_sha256": input_sha,
        "t_read": t1 - t0,
        "t_model": t2 - t1,
        "t_predict": t3 - t2,
        "t_write": t4 - t3,
    }
