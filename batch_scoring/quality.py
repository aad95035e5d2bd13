"""Anomaly-model quality on series no choice was made on (``python -m batch_scoring quality``).

Two generated sets with different seeds: a tuning set, on which the plain threshold rule picks its
two thresholds, and a held-out set (2,000 series by default), on which every candidate is judged
once: each series' first half trains (or calibrates) its model, the second half is scored against
the generator's labels. Reported per candidate: precision, recall and F1 micro-averaged over the
held-out series with a 95% bootstrap interval over series, recall per anomaly type, and false
alarms per sensor per day, the figure an operator lives with. Candidates: the one-class SVM
presets (``model.PRESETS``) and a threshold rule on the same causal features: flag a reading
whose residual against the previous 15 exceeds ``k`` robust deviations of the training half, or
whose last 10 readings barely move (spread below ``s`` times the training half's median spread).
"""

from __future__ import annotations

import itertools
import json
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from batch_scoring import features
from batch_scoring.evaluate import Labelled, labelled
from batch_scoring.generate import GenSpec, generate_series
from batch_scoring.model import PRESETS, fit, pooled, recall_by_type, series_counts
from batch_scoring.schema import ANOMALY_TYPES

TRAIN_FRACTION = 0.5
RULE_GRID = {"k": [3.0, 4.0, 5.0, 6.0, 8.0], "s": [0.02, 0.05, 0.1, 0.2]}


def series_set(seed: int, count: int, readings: int = 1440) -> list[Labelled]:
    spec = GenSpec(devices=max(1, count // 10), sensors=10, readings=readings, seed=seed)
    return [labelled(generate_series(spec, index)) for index in range(spec.series)]


@dataclass(frozen=True)
class Rule:
    """The threshold baseline: residual beyond ``k`` robust deviations, or a spread below ``s``."""

    k: float
    s: float

    def predict(self, values: np.ndarray, n_train: int) -> np.ndarray:
        x = features.compute(values, "context").astype(np.float64)
        resid, spread = x[:, 1], x[:, 2]
        deviation = 1.4826 * np.median(np.abs(resid[:n_train] - np.median(resid[:n_train]))) + 1e-9
        floor = self.s * np.median(spread[:n_train])
        return ((np.abs(resid) > self.k * deviation) | (spread < floor)).astype(np.int8)


def predictions(candidate: object, values: np.ndarray) -> np.ndarray:
    """Held-out predictions (0/1) of one candidate on one series."""
    n_train = int(len(values) * TRAIN_FRACTION)
    if isinstance(candidate, Rule):
        return candidate.predict(values, n_train)[n_train:]
    x = features.compute(values, candidate.features)
    pipe = fit(x[:n_train], candidate)
    return (pipe.predict(x[n_train:]) == -1).astype(np.int8)


def _counts(args: tuple[object, list[Labelled]]) -> list[dict]:
    candidate, chunk = args
    rows = []
    for values, labels, kinds in chunk:
        held = int(len(values) * TRAIN_FRACTION)
        rows.append(series_counts(predictions(candidate, values), labels[held:], kinds[held:]))
    return rows


def per_series(candidate: object, data: list[Labelled], workers: int) -> list[dict]:
    chunks = [data[i : i + 50] for i in range(0, len(data), 50)]
    with ProcessPoolExecutor(workers) as pool:
        return [r for got in pool.map(_counts, [(candidate, c) for c in chunks]) for r in got]


def summary(rows: list[dict], readings: int, freq_s: int = 60, resamples: int = 1000, seed: int = 0) -> dict:
    """Micro-averaged figures, a bootstrap interval of F1 over series, false alarms a day."""
    total = pooled(rows)
    table = np.array([[r[k] for k in ("tp", "fp", "fn")] for r in rows], dtype=np.int64)
    rng = np.random.default_rng(seed)
    f1s = []
    for _ in range(resamples):
        tp, fp, fn = table[rng.integers(0, len(rows), len(rows))].sum(axis=0)
        f1s.append(2 * tp / max(1, 2 * tp + fp + fn))
    days = readings * (1 - TRAIN_FRACTION) * freq_s / 86400
    return {
        **{k: total[k] for k in ("precision", "recall", "f1")},
        "f1_95": [round(float(np.percentile(f1s, 2.5)), 3), round(float(np.percentile(f1s, 97.5)), 3)],
        "false_alarms_per_sensor_day": round(total["fp"] / (len(rows) * days), 2),
        "recall_by_type": recall_by_type(rows),
        "series": len(rows),
    }


def tune_rule(data: list[Labelled], workers: int, readings: int) -> Rule:
    """The threshold pair with the best F1 on the tuning set."""
    scored = []
    for k, s in itertools.product(RULE_GRID["k"], RULE_GRID["s"]):
        rule = Rule(k, s)
        scored.append((summary(per_series(rule, data, workers), readings, resamples=1)["f1"], rule))
    return max(scored, key=lambda pair: pair[0])[1]


def evaluate(held_out: int = 2000, tuning: int = 500, readings: int = 1440, workers: int = 2) -> dict:
    """Every candidate on the held-out set; the threshold rule tuned on the tuning set first."""
    tune_set, test_set = series_set(101, tuning, readings), series_set(202, held_out, readings)
    rule = tune_rule(tune_set, workers, readings)
    candidates: dict[str, object] = {
        f"one-class SVM, {name}": replace(config, train_fraction=TRAIN_FRACTION)
        for name, config in PRESETS.items()
    }
    candidates[f"threshold rule (k={rule.k:g}, s={rule.s:g}, tuned on {tuning} other series)"] = rule
    results = {name: summary(per_series(c, test_set, workers), readings) for name, c in candidates.items()}
    best = max(results, key=lambda name: results[name]["f1"])
    return {
        "held_out_series": held_out,
        "tuning_series": tuning,
        "readings": readings,
        "results": results,
        "best": best,
    }


def markdown(report: dict) -> str:
    lines = [
        "| candidate | precision | recall | F1 (95% interval over series) | false alarms per sensor per day "
        "| recall spike / drift / stuck |",
        "|---|---:|---:|---|---:|---|",
    ]
    for name, r in report["results"].items():
        by = " / ".join(f"{r['recall_by_type'][k]:.2f}" for k in ANOMALY_TYPES)
        f1 = f"{r['f1']:.3f} ({r['f1_95'][0]:.3f}-{r['f1_95'][1]:.3f})"
        alarms = f"{r['false_alarms_per_sensor_day']:.2f}"
        lines.append(f"| {name} | {r['precision']:.3f} | {r['recall']:.3f} | {f1} | {alarms} | {by} |")
    return "\n".join(lines)


def write(report: dict, path: Path) -> None:
    path.write_text(json.dumps(report, indent=1))
