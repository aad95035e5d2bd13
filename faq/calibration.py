"""Scores that are probabilities: calibration of the matcher, and how to measure it.

The logistic regression's probabilities rank the originals well but are not calibrated: on
held-out duplicates its top-1 score averages 0.19 while the top-1 is right 62% of the time. Two
monotone steps, fitted on out-of-fold predictions (each duplicate scored by a model trained
without it), turn every score into the probability that this original is the right one, without
changing the ranking: a temperature ``T`` sharpens the distribution, ``softmax(log p / T)``, and a
logistic map of each of the five best scores onto whether it was right, ``sigmoid(a * logit(s) +
b)`` (Platt scaling), corrects what one temperature cannot (too little confidence at low scores,
too much at high ones). The served ONNX model applies the same formulas after the classifier
(``export.faq_onnx.to_onnx``), so the served ``SCORE`` is calibrated and the parity test covers it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

FOLDS = 5
BINS = 10
MIN_DUPLICATES = 20  # fewer held-out duplicates than this: leave the scores as they are (T = 1)
FLOOR = 1e-30  # log of a probability that underflowed to 0; the ONNX graph clips the same way
EDGE = 1e-6  # the logit of a score is taken within [EDGE, 1 - EDGE]
TOP = 5  # the answers a calibration is fitted on: what faq_match returns


def scale(proba: np.ndarray, temperature: float) -> np.ndarray:
    """``softmax(log p / T)`` per row (float64 inside, the input's dtype out)."""
    if temperature == 1.0:
        return proba
    logits = np.log(np.maximum(proba.astype(np.float64), FLOOR)) / temperature
    logits -= logits.max(axis=1, keepdims=True)
    out = np.exp(logits)
    return (out / out.sum(axis=1, keepdims=True)).astype(proba.dtype)


def fit_temperature(proba: np.ndarray, truth_column: np.ndarray) -> float:
    """The ``T`` that minimises the negative log-likelihood of the true originals (a 1-D convex
    problem: a coarse grid on log T, then a finer one around the best point)."""
    log_p = np.log(np.maximum(proba.astype(np.float64), FLOOR))
    rows = np.arange(len(truth_column))

    def nll(temperature: float) -> float:
        z = log_p / temperature
        z -= z.max(axis=1, keepdims=True)
        return float(-(z[rows, truth_column] - np.log(np.exp(z).sum(axis=1))).mean())

    grid = np.exp(np.linspace(np.log(0.02), np.log(50.0), 121))
    best = grid[int(np.argmin([nll(t) for t in grid]))]
    fine = np.exp(np.linspace(np.log(best) - 0.08, np.log(best) + 0.08, 81))
    return float(fine[int(np.argmin([nll(t) for t in fine]))])


def out_of_fold(
    ds: object, duplicates: pd.DataFrame, folds: int = FOLDS, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, column of the true original) for every duplicate, each from a model
    trained on the originals' texts and the other folds' duplicates."""
    from faq.model import FaqModel

    order = np.random.default_rng(seed).permutation(len(duplicates))
    parts = np.array_split(order, folds)
    probas, columns = [], []
    for part in parts:
        held = duplicates.iloc[part]
        model = FaqModel.fit(ds, duplicates.drop(duplicates.index[part]))  # type: ignore[arg-type]
        column = {int(f): i for i, f in enumerate(model.faq_ids)}
        probas.append(model.predict_proba_clean(list(held["text"])))
        columns.append(np.array([column[int(f)] for f in held["faq_id"]]))
    return np.concatenate(probas), np.concatenate(columns)


@dataclass(frozen=True)
class Calibration:
    """``sigmoid(slope * logit(softmax(log p / temperature)) + intercept)``, per score."""

    temperature: float
    slope: float
    intercept: float

    def apply(self, proba: np.ndarray) -> np.ndarray:
        scaled = np.clip(scale(proba, self.temperature).astype(np.float64), EDGE, 1 - EDGE)
        z = self.slope * np.log(scaled / (1 - scaled)) + self.intercept
        return (1 / (1 + np.exp(-z))).astype(proba.dtype)


def fit_calibration(ds: object, duplicates: pd.DataFrame) -> Calibration | None:
    """Fitted on out-of-fold predictions of ``duplicates``; None when there are too few."""
    from sklearn.linear_model import LogisticRegression

    if len(duplicates) < MIN_DUPLICATES:
        return None
    proba, truth = out_of_fold(ds, duplicates)
    temperature = fit_temperature(proba, truth)
    scaled = scale(proba, temperature)
    best = np.argsort(-scaled, axis=1, kind="stable")[:, :TOP]
    top = np.clip(np.take_along_axis(scaled, best, axis=1).ravel().astype(np.float64), EDGE, 1 - EDGE)
    right = (best == truth[:, None]).ravel()
    platt = LogisticRegression(C=1e6).fit(np.log(top / (1 - top))[:, None], right)
    return Calibration(temperature, float(platt.coef_[0, 0]), float(platt.intercept_[0]))


@dataclass(frozen=True)
class Reliability:
    """How well top-1 scores match how often the top-1 is right."""

    ece: float  # expected calibration error: mean |accuracy - confidence|, weighted by bin size
    rows: list[tuple[float, float, int, float, float]]  # bin low, high, count, mean score, accuracy
    mean_score: float
    accuracy: float

    @classmethod
    def of(cls, top1_score: np.ndarray, correct: np.ndarray, bins: int = BINS) -> Reliability:
        edges = np.linspace(0.0, 1.0, bins + 1)
        which = np.clip(np.digitize(top1_score, edges[1:-1]), 0, bins - 1)
        rows, ece = [], 0.0
        for b in range(bins):
            mask = which == b
            if mask.any():
                conf, acc = float(top1_score[mask].mean()), float(correct[mask].mean())
                rows.append((float(edges[b]), float(edges[b + 1]), int(mask.sum()), conf, acc))
                ece += mask.mean() * abs(acc - conf)
        return cls(float(ece), rows, float(top1_score.mean()), float(correct.mean()))

    def markdown(self) -> list[str]:
        lines = ["| top-1 score | questions | mean score | share right |", "|---|---:|---:|---:|"]
        for low, high, count, conf, acc in self.rows:
            lines.append(f"| {low:.1f}-{high:.1f} | {count} | {conf:.2f} | {acc:.2f} |")
        return lines


def cross_validated(ds: object, folds: int = FOLDS, seed: int = 0) -> tuple[Reliability, list[float]]:
    """Calibration measured on every duplicate once, by nested cross-validation: each outer fold
    is scored by a model trained without it, calibrated (out of fold) on the other folds alone.
    Returns the pooled reliability and each fold's expected calibration error."""
    from faq.model import FaqModel

    duplicates = ds.duplicates  # type: ignore[attr-defined]
    parts = np.array_split(np.random.default_rng(seed).permutation(len(duplicates)), folds)
    scores, right, per_fold = [], [], []
    for part in parts:
        held, rest = duplicates.iloc[part], duplicates.drop(duplicates.index[part])
        model = FaqModel.fit(ds, rest)  # type: ignore[arg-type]
        model.calibration = fit_calibration(ds, rest)
        proba = model.predict_proba_clean(list(held["text"]))
        top = model.faq_ids[proba.argmax(axis=1)]
        scores.append(proba.max(axis=1))
        right.append(top == held["faq_id"].to_numpy())
        per_fold.append(Reliability.of(scores[-1], right[-1]).ece)
    return Reliability.of(np.concatenate(scores), np.concatenate(right)), per_fold
