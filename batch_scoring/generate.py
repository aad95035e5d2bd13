"""Synthetic sensor data in the original schema with injected, labelled anomalies.

Each (device, sensor) series is a periodic process cycle (4 h at one reading a minute by
default) plus Gaussian noise; three anomaly kinds are injected and labelled in `Anomaly` (0/1)
and `AnomalyType`:

* spike: an isolated reading offset by 5-10 noise sigmas (either sign);
* drift: a linear ramp away from normal up to 6-12 sigmas over 1-4 hours; a drifting reading is
  labelled once the offset reaches 3 sigmas (smaller offsets are indistinguishable from noise);
* stuck: the sensor repeats its last reading for 30-120 readings.

Every series draws from its own generator seeded by (seed, series index), so a series is the
same whether it is generated alone, in a chunk, or by another worker.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from batch_scoring.schema import (
    DATA_MANIFEST,
    DEVICE,
    LABEL,
    LABEL_TYPE,
    SENSOR,
    TS,
    VALUE,
    Partition,
    device_name,
    sensor_name,
)
from batch_scoring.storage import StoreSpec


@dataclass(frozen=True)
class GenSpec:
    """Shape and anomaly rates of a generated data set (defaults: the original 3 x 5)."""

    devices: int = 3
    sensors: int = 5
    readings: int = 1440
    start: str = "2024-01-01T00:00:00"
    freq_s: int = 60
    seed: int = 7
    spike_rate: float = 0.002  # expected spikes per reading
    drift_prob: float = 0.3  # chance a series has one drift episode
    stuck_prob: float = 0.3  # chance a series has one stuck episode
    cycle_readings: int = 240  # readings per process cycle (4 h at one reading a minute)

    @property
    def series(self) -> int:
        return self.devices * self.sensors

    def partitions(self) -> list[Partition]:
        return [
            Partition(device_name(d, self.devices), sensor_name(s, self.sensors))
            for d in range(self.devices)
            for s in range(self.sensors)
        ]


def generate_series(spec: GenSpec, index: int) -> pd.DataFrame:
    """One series as a DataFrame with the data columns plus the anomaly labels."""
    rng = np.random.default_rng([spec.seed, index])
    n = spec.readings
    t = np.arange(n)
    level = rng.uniform(20.0, 80.0)
    sigma = rng.uniform(0.5, 2.0)
    amp = rng.uniform(1.0, 6.0) * sigma
    phase = rng.uniform(0.0, 2 * np.pi)
    value = level + amp * np.sin(2 * np.pi * t / spec.cycle_readings + phase) + rng.normal(0.0, sigma, n)
    label = np.zeros(n, dtype=np.int8)
    kind = np.full(n, "", dtype=object)

    if rng.random() < spec.drift_prob and n > 300:
        length = int(rng.integers(60, 241))
        start = int(rng.integers(0, n - length))
        offset = np.linspace(0.0, rng.uniform(6.0, 12.0) * sigma, length) * rng.choice([-1.0, 1.0])
        value[start : start + length] += offset
        hit = start + np.flatnonzero(np.abs(offset) >= 3.0 * sigma)
        label[hit], kind[hit] = 1, "drift"

    if rng.random() < spec.stuck_prob and n > 200:
        length = int(rng.integers(30, 121))
        start = int(rng.integers(1, n - length))
        value[start : start + length] = value[start - 1]
        label[start : start + length], kind[start : start + length] = 1, "stuck"

    n_spikes = rng.poisson(spec.spike_rate * n)
    if n_spikes:
        where = rng.choice(n, size=min(n_spikes, n), replace=False)
        value[where] += rng.uniform(5.0, 10.0, where.size) * sigma * rng.choice([-1.0, 1.0], where.size)
        label[where], kind[where] = 1, "spike"

    part = _partition_at(spec, index)
    return pd.DataFrame(
        {
            TS: pd.date_range(spec.start, periods=n, freq=f"{spec.freq_s}s"),
            DEVICE: part.device,
            SENSOR: part.sensor,
            VALUE: value,
            LABEL: label,
            LABEL_TYPE: pd.array(kind, dtype="string"),
        }
    )


def _partition_at(spec: GenSpec, index: int) -> Partition:
    d, s = divmod(index, spec.sensors)
    return Partition(device_name(d, spec.devices), sensor_name(s, spec.sensors))


def to_parquet_bytes(df: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    df.to_parquet(buf, index=False, compression="snappy")
    return buf.getvalue()


def to_csv_bytes(df: pd.DataFrame) -> bytes:
    return df.to_csv(index=False, date_format="%Y-%m-%d %H:%M:%S").encode()


def _write_chunk(args: tuple[StoreSpec, GenSpec, list[int], tuple[str, ...]]) -> int:
    store_spec, spec, indices, formats = args
    data = store_spec.open().data
    for i in indices:
        df = generate_series(spec, i)
        part = _partition_at(spec, i)
        if "parquet" in formats:
            data.write_bytes(part.data_blob("parquet"), to_parquet_bytes(df))
        if "csv" in formats:
            data.write_bytes(part.data_blob("csv"), to_csv_bytes(df))
    return len(indices)


def _chunks(n: int, size: int) -> Iterator[list[int]]:
    for start in range(0, n, size):
        yield list(range(start, min(n, start + size)))


def generate(
    store_spec: StoreSpec,
    spec: GenSpec,
    formats: tuple[str, ...] = ("parquet",),
    combined_csv: bool = False,
    workers: int = 1,
    progress: bool = True,
) -> dict:
    """Write every series to the store's `data` container; return the data manifest."""
    from tqdm import tqdm

    chunks = [(store_spec, spec, idx, formats) for idx in _chunks(spec.series, 50)]
    bar = tqdm(total=spec.series, desc="generate", unit="series", disable=not progress)
    if workers > 1 and len(chunks) > 1:
        with ProcessPoolExecutor(workers) as pool:
            for done in pool.map(_write_chunk, chunks):
                bar.update(done)
    else:
        for chunk in chunks:
            bar.update(_write_chunk(chunk))
    bar.close()

    store = store_spec.open()
    if combined_csv:
        # The original architecture's single file: every series in one CSV.
        frames = (generate_series(spec, i) for i in range(spec.series))
        buf = io.StringIO()
        for j, df in enumerate(frames):
            df.to_csv(buf, index=False, header=j == 0, date_format="%Y-%m-%d %H:%M:%S")
        store.data.write_bytes("sensor_data.csv", buf.getvalue().encode())
    manifest = {
        "generator": asdict(spec),
        "series": spec.series,
        "rows": spec.series * spec.readings,
        "formats": list(formats),
        "combined_csv": combined_csv,
    }
    store.data.write_bytes(DATA_MANIFEST, json.dumps(manifest, indent=2).encode())
    return manifest
