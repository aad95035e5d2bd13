"""The benchmark's pieces that decide its numbers: the baseline script and the results section."""

from __future__ import annotations

import pickle
import subprocess
from pathlib import Path

import pandas as pd

from batch_scoring import features
from batch_scoring.model import PRESETS, fit
from perf import replace_section
from perf.batch.bench import SECTION, fit_line, original_pattern_command

REPO = Path(__file__).resolve().parents[3]


def test_original_pattern_reads_the_whole_csv_and_scores_one_series(store_root: Path, tmp_path: Path) -> None:
    frames = {k: pd.read_parquet(store_root / "data" / f"{k}.parquet") for k in ("D000/S00", "D001/S02")}
    csv = tmp_path / "sensor_data.csv"
    pd.concat(frames.values()).to_csv(csv, index=False)
    df = frames["D001/S02"]
    x = features.compute(df["Value"].to_numpy(), "context")
    model = fit(x[:360], PRESETS["default"])
    (tmp_path / "m.pkl").write_bytes(pickle.dumps(model))
    out = tmp_path / "out.csv"
    command = original_pattern_command(csv, tmp_path / "m.pkl", "D001", "S02", "context", out)
    subprocess.run(command, check=True, timeout=120)
    got = pd.read_csv(out)
    assert len(got) == len(df) and set(got["Device"]) == {"D001"} and set(got["Sensor"]) == {"S02"}
    assert (got["Prediction"].to_numpy() == (model.predict(x) == -1).astype(int)).all()


def test_results_section_is_replaced_and_the_rest_kept() -> None:
    doc = "# Performance results\n\n## Real-time serving\n\nA\n\n## Batch scoring\n\nold\n\n## GPU\n\nB\n"
    new = replace_section(doc, SECTION, f"{SECTION}\n\nnew\n")
    assert "old" not in new and "new" in new
    assert new.index("## Real-time serving") < new.index(SECTION) < new.index("## GPU")
    assert "A" in new and "B" in new
    assert replace_section("", SECTION, f"{SECTION}\n\nx\n").startswith(
        "# Performance results\n\n## Batch scoring"
    )


def test_fit_line() -> None:
    fixed, per = fit_line([(100, 2.0), (1000, 11.0), (10000, 101.0)])
    assert abs(fixed - 1.0) < 1e-9 and abs(per - 0.01) < 1e-12
