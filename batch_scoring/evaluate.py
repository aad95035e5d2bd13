"""Grid evaluation of hyperparameters against the injected labels (`python -m batch_scoring tune`).

Same split as training (first `train_fraction` of each series trains, the rest evaluates) and
micro-averaged precision/recall over all series. It fits scikit-learn models without exporting
them, which is what makes a grid affordable; `train` then reports the exported models' numbers.
"""

from __future__ import annotations

import itertools
from concurrent.futures import ProcessPoolExecutor

import numpy as np
import pandas as pd

from batch_scoring import dataio
from batch_scoring.model import ModelConfig, features_for, fit, pooled, recall_by_type, series_counts
from batch_scoring.schema import LABEL, LABEL_TYPE, VALUE
from batch_scoring.storage import StoreSpec

DEFAULT_GRID = {
    "features": ["value", "context"],
    "gamma": [0.01, 0.1, "scale"],
    "nu": [0.0001, 0.001, 0.01, 0.05],
}


Labelled = tuple[np.ndarray, np.ndarray, np.ndarray]  # values, labels, anomaly types


def labelled(df: pd.DataFrame) -> Labelled:
    """A generated series as the arrays that evaluation needs."""
    return df[VALUE].to_numpy(), df[LABEL].to_numpy(), df[LABEL_TYPE].fillna("").to_numpy()


def _load(spec: StoreSpec, limit: int | None) -> list[Labelled]:
    store = spec.open()
    out = []
    for part in dataio.list_partitions(store.data)[:limit]:
        name, payload = dataio.read_partition_bytes(store.data, part)
        df = dataio.parse_frame(name, payload, columns=None)
        if LABEL not in df.columns:
            raise ValueError(f"{name} has no {LABEL} column: tuning needs labelled (generated) data")
        out.append(labelled(df))
    return out


def _evaluate(args: tuple[ModelConfig, list[Labelled]]) -> dict:
    config, series = args
    rows, n_sv = [], []
    for values, labels, kinds in series:
        x = features_for(values, config)
        n_train = int(len(values) * config.train_fraction)
        pipe = fit(x[:n_train], config)
        pred = (pipe.predict(x[n_train:]) == -1).astype(np.int8)
        rows.append(series_counts(pred, labels[n_train:], kinds[n_train:]))
        n_sv.append(pipe[-1].support_vectors_.shape[0])
    row = {"features": config.features, "gamma": config.gamma, "nu": config.nu, **pooled(rows)}
    row.update({f"recall_{k}": v for k, v in recall_by_type(rows).items()})
    row["mean_sv"] = round(float(np.mean(n_sv)), 1)
    return row


def tune(
    spec: StoreSpec,
    grid: dict | None = None,
    limit: int | None = None,
    workers: int = 1,
    train_fraction: float = 0.5,
) -> list[dict]:
    """Evaluate every combination of the grid; rows sorted by F1, best first."""
    grid = grid or DEFAULT_GRID
    series = _load(spec, limit)
    configs = [
        ModelConfig(features=f, gamma=g, nu=n, train_fraction=train_fraction)
        for f, g, n in itertools.product(grid["features"], grid["gamma"], grid["nu"])
    ]
    tasks = [(c, series) for c in configs]
    if workers > 1:
        with ProcessPoolExecutor(workers) as pool:
            rows = list(pool.map(_evaluate, tasks))
    else:
        rows = [_evaluate(t) for t in tasks]
    return sorted(rows, key=lambda r: -r["f1"])


def markdown(rows: list[dict]) -> str:
    head = (
        "| features | gamma | nu | precision | recall | F1 | recall spike | recall drift "
        "| recall stuck | mean SVs |\n|---|---|---|---|---|---|---|---|---|---|"
    )
    body = [
        f"| {r['features']} | {r['gamma']} | {r['nu']} | {r['precision']:.3f} | {r['recall']:.3f} "
        f"| {r['f1']:.3f} | {r['recall_spike']} | {r['recall_drift']} | {r['recall_stuck']} "
        f"| {r['mean_sv']} |"
        for r in rows
    ]
    return "\n".join([head, *body])
