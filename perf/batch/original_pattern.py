"""The original architecture's scoring of one series, the batch benchmark's baseline: start
Python, unpickle the model, read the whole sensor CSV, keep one (device, sensor), predict, write
a CSV.

    python perf/batch/original_pattern.py CSV MODEL DEVICE SENSOR FEATURES OUT
"""

from __future__ import annotations

import pickle
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from batch_scoring import features  # same features as the job (NumPy only)


def main(csv: str, model_file: str, device: str, sensor: str, feature_set: str, out: str) -> None:
    model = pickle.loads(Path(model_file).read_bytes())
    df = pd.read_csv(csv)
    df = df[(df["Device"] == device) & (df["Sensor"] == sensor)].reset_index(drop=True)
    df["Prediction"] = (model.predict(features.compute(df["Value"].to_numpy(), feature_set)) == -1).astype(
        int
    )
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(out, index=False)


if __name__ == "__main__":
    main(*sys.argv[1:])
