"""Calibration pieces on data with a known answer: the temperature that generated the labels is
found again, the calibrated scores keep the ranking, and the reliability table measures them."""

from __future__ import annotations

import numpy as np

from faq.calibration import Calibration, Reliability, fit_temperature, scale


def test_the_temperature_that_drew_the_labels_is_recovered() -> None:
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, size=(4000, 12))
    true_t = 0.5
    drawn = scale(np.exp(logits) / np.exp(logits).sum(1, keepdims=True), true_t)
    truth = np.array([rng.choice(12, p=row) for row in drawn])
    proba = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert abs(fit_temperature(proba, truth) - true_t) < 0.05


def test_calibrated_scores_keep_the_order_and_stay_probabilities() -> None:
    proba = np.random.default_rng(1).dirichlet(np.ones(30), size=50).astype(np.float32)
    calibrated = Calibration(temperature=0.45, slope=0.8, intercept=0.3).apply(proba)
    assert calibrated.dtype == np.float32 and ((calibrated > 0) & (calibrated < 1)).all()
    assert (
        np.argsort(-calibrated, axis=1, kind="stable")[:, :5]
        == np.argsort(-proba, axis=1, kind="stable")[:, :5]
    ).all()


def test_reliability_of_perfect_and_of_overconfident_scores() -> None:
    rng = np.random.default_rng(2)
    score = rng.uniform(0, 1, 20000)
    right = rng.uniform(0, 1, 20000) < score
    assert Reliability.of(score, right).ece < 0.02
    overconfident = Reliability.of(np.minimum(score + 0.2, 1.0), right)
    assert 0.15 < overconfident.ece < 0.25 and len(overconfident.markdown()) == 2 + len(overconfident.rows)
