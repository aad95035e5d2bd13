"""Grid evaluation of hyperparameters against the injected labels (`python -m batch_scoring tune`).

Same split as training (first `train_fraction` of each series trains, the rest evaluates) and
micro-averaged precision/recall over all series. It fits scikit-learn models without exporting
them, which is what makes a grid affordable; `train` then reports the exported models' numbers.
"""

from __future__ import annotations

import itertools
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from batch_scoring import dataio
from batch_scoring.model import ModelConfig, confusion, features_for, fit, with_ratios
from batch_scoring.schema import LABEL, LABEL_TYPE, VALUE
from batch_scoring.storage import StoreSpec
from batch_scoring.train import ANOMALY_TYPES

DEFAULT_GRID = {
    "features": ["value", "context"],
    "gamma": [0.01, 0.1, "scale"],
    "nu": [0.0001, 0.001, 0.01, 0.05],
}


def _load(spec: StoreSpec, limit: int | None) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    store = spec.open()
    out = []
    for part in dataio.list_partitions(store.data)[:limit]:
        name, payload = dataio.read_partition_bytes(store.data, part)
        df = dataio.parse_frame(name, payload, columns=None)
        if LABEL not in df.columns:
            raise ValueError(f"{name} has no {LABEL} column: tuning needs labelled (generated) data")
        out.append((df[VALUE].to_numpy(), df[LABEL].to_numpy(), df[LABEL_TYPE].fillna("").to_numpy()))
    return out


def _evaluate(args: tuple[ModelConfig, list]) -> dict:
    config, series = args
    counts = {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
    hits = dict.fromkeys(ANOMALY_TYPES, 0)
    totals = dict.fromkeys(ANOMALY_TYPES, 0)
    n_sv = []
    for values, labels, kinds in series:
        x = features_for(values, config)
        n_train = int(len(values) * config.train_fraction)
        pipe = fit(x[:n_train], config)
        pred = (pipe.predict(x[n_train:]) == -1).astype(np.int8)
        c = confusion(pred, labels[n_train:])
        for k in counts:
            counts[k] += c[k]
        for k in ANOMALY_TYPES:
            mask = kinds[n_train:] == k
            hits[k] += int(pred[mask].sum())
            totals[k] += int(mask.sum())
        n_sv.append(pipe[-1].support_vectors_.shape[0])
    row = {"features": config.features, "gamma": config.gamma, "nu": config.nu, **with_ratios(counts)}
    row.update({f"recall_{k}": round(hits[k] / totals[k], 3) if totals[k] else None for k in ANOMALY_TYPES})
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
