"""Reading partitions from a `data` container (Parquet preferred, CSV accepted)."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from batch_scoring.schema import DATA_COLUMNS, DATA_SUFFIXES, TS, VALUE, Partition
from batch_scoring.storage import Container, MissingBlob


def read_partition_bytes(data: Container, part: Partition) -> tuple[str, bytes]:
    """The partition's blob name and bytes; Parquet first, then CSV."""
    for fmt in ("parquet", "csv"):
        name = part.data_blob(fmt)
        try:
            return name, data.read_bytes(name)
        except MissingBlob:
            continue
    raise MissingBlob(f"no data for {part.key} in {data.describe()} (.parquet or .csv)")


def parse_frame(name: str, payload: bytes, columns: list[str] | None = DATA_COLUMNS) -> pd.DataFrame:
    """Decode a partition, keep `columns` (labels are never read when scoring), sort by time."""
    if name.endswith(".parquet"):
        df = pd.read_parquet(io.BytesIO(payload), columns=columns)
    else:
        df = pd.read_csv(io.BytesIO(payload), usecols=columns, parse_dates=[TS])
    missing = [c for c in (columns or DATA_COLUMNS) if c not in df.columns]
    if missing:
        raise ValueError(f"{name}: missing columns {missing}")
    if not df[TS].is_monotonic_increasing:
        df = df.sort_values(TS, kind="stable", ignore_index=True)
    return df


def read_series(name: str, payload: bytes) -> tuple[pa.Array, np.ndarray]:
    """Only what scoring needs, `TS` (Arrow timestamps) and `Value` (float64), sorted by time.

    Device and Sensor are implied by the partition's name; skipping them (and pandas) roughly
    halves the decode time of a 1,440-reading partition.
    """
    if name.endswith(".parquet"):
        table = pq.read_table(io.BytesIO(payload), columns=[TS, VALUE])
    else:
        table = pa.Table.from_pandas(parse_frame(name, payload, [TS, VALUE]), preserve_index=False)
    ts = table.column(TS).combine_chunks()
    if not pa.types.is_timestamp(ts.type):
        raise ValueError(f"{name}: {TS} is {ts.type}, not a timestamp")
    ts = ts.cast(pa.timestamp("us"))
    values = table.column(VALUE).to_numpy().astype(np.float64, copy=False)
    order = np.argsort(ts.to_numpy(zero_copy_only=False), kind="stable")
    if (np.diff(order) != 1).any():
        ts, values = ts.take(pa.array(order)), values[order]
    return ts, values


def list_partitions(data: Container) -> list[Partition]:
    """Partitions present in a data container (`<device>/<sensor>.parquet|csv`)."""
    found = set()
    for name in data.list():
        if name.count("/") == 1 and name.endswith(DATA_SUFFIXES):
            try:
                found.add(Partition.parse(name))
            except ValueError:
                continue
    return sorted(found)


def read_json(container: Container, name: str) -> dict:
    return json.loads(container.read_bytes(name))
