"""The generator: original schema, labelled anomalies of each kind, determinism, scale."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd

from batch_scoring.generate import GenSpec, generate, generate_series
from batch_scoring.schema import DATA_COLUMNS, LABEL, LABEL_TYPE
from batch_scoring.storage import StoreSpec


def test_default_matches_the_original_shape() -> None:
    spec = GenSpec()
    assert (spec.devices, spec.sensors, spec.readings) == (3, 5, 1440)
    assert len({p.key for p in spec.partitions()}) == 15


def test_series_schema_and_labels() -> None:
    df = generate_series(GenSpec(), 4)
    assert list(df.columns[:4]) == DATA_COLUMNS
    assert len(df) == 1440 and df["TS"].is_monotonic_increasing
    assert set(df[LABEL].unique()) <= {0, 1}
    # Labels and types agree: a labelled reading has a type, an unlabelled one has none.
    assert ((df[LABEL] == 1) == (df[LABEL_TYPE] != "")).all()


def test_every_anomaly_kind_is_injected_somewhere() -> None:
    spec = GenSpec(devices=4, sensors=5)
    kinds = pd.concat([generate_series(spec, i)[LABEL_TYPE] for i in range(spec.series)])
    assert {"spike", "drift", "stuck"} <= set(kinds.unique())


def test_stuck_values_repeat_and_spikes_stand_out() -> None:
    spec = GenSpec(devices=4, sensors=5)
    spike_resid, normal_resid = [], []
    for i in range(spec.series):
        df = generate_series(spec, i)
        stuck = df[df[LABEL_TYPE] == "stuck"]["Value"]
        if len(stuck):
            assert stuck.nunique() == 1
        resid = (df["Value"] - df["Value"].rolling(9, center=True, min_periods=1).median()).abs()
        spike_resid += list(resid[df[LABEL_TYPE] == "spike"])
        normal_resid += list(resid[df[LABEL] == 0])
    assert len(spike_resid) > 10
    # Spikes are 5-10 noise sigmas: far outside what normal readings do locally.
    assert pd.Series(spike_resid).median() > 4 * pd.Series(normal_resid).median()


def test_series_are_deterministic_and_independent_of_chunking() -> None:
    spec = GenSpec(devices=50, sensors=4, seed=1)
    a = generate_series(spec, 123)
    b = generate_series(spec, 123)
    pd.testing.assert_frame_equal(a, b)
    assert not generate_series(spec, 124)["Value"].equals(a["Value"])


def test_scales_to_ten_thousand_series() -> None:
    spec = GenSpec(devices=1000, sensors=10)
    parts = spec.partitions()
    assert len(parts) == len(set(parts)) == 10_000
    assert parts[-1].key == "D999/S09"
    last = generate_series(spec, 9_999)
    assert (last["Device"].iloc[0], last["Sensor"].iloc[0]) == ("D999", "S09")


def test_writes_parquet_and_csv_on_request(tmp_path: Path) -> None:
    spec = StoreSpec.parse(f"local:{tmp_path}")
    gen = GenSpec(devices=1, sensors=2, readings=100)
    manifest = generate(spec, gen, formats=("parquet", "csv"), combined_csv=True, progress=False)
    assert manifest["rows"] == 200
    data = tmp_path / "data"
    pq_df = pd.read_parquet(data / "D000" / "S01.parquet")
    csv_df = pd.read_csv(data / "D000" / "S01.csv", parse_dates=["TS"])
    assert len(pq_df) == len(csv_df) == 100
    assert (pq_df["Value"] - csv_df["Value"]).abs().max() < 1e-9
    combined = pd.read_csv(io.BytesIO((data / "sensor_data.csv").read_bytes()))
    assert len(combined) == 200 and list(combined.columns[:4]) == DATA_COLUMNS
