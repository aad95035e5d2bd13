"""The original architecture's scoring of one series, as the benchmark's baseline: start Python,
unpickle the model (written by bench.py a moment earlier into a private build folder), read the
whole sensor CSV, keep one (device, sensor), predict, write a CSV."""

from __future__ import annotations

import argparse
import pickle
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from batch_scoring import features  # same features as the job (NumPy only)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--csv", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--device", required=True)
    p.add_argument("--sensor", required=True)
    p.add_argument("--features", default="context")
    p.add_argument("--out", required=True)
    args = p.parse_args()

    with open(args.model, "rb") as fh:
        model = pickle.load(fh)
    df = pd.read_csv(args.csv)
    df = df[(df["Device"] == args.device) & (df["Sensor"] == args.sensor)].reset_index(drop=True)
    x = features.compute(df["Value"].to_numpy(), args.features)
    pred = model.predict(x)
    df["Prediction"] = [0 if p == 1 else 1 for p in pred]  # +1 -> 0 normal, -1 -> 1 anomaly
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
