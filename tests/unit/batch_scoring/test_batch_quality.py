"""Quality figures: judged on held-out series only, with their spread, against a tuned threshold
rule, and in false alarms per sensor per day."""

from __future__ import annotations

import numpy as np

from batch_scoring.quality import Rule, evaluate, summary


def test_false_alarms_per_day_and_the_interval_come_from_the_counts() -> None:
    # 10 series, each 1,440 readings: 720 held out = half a day; 1 false alarm each.
    rows = [
        {
            "tp": 2,
            "fp": 1,
            "fn": 2,
            "tn": 715,
            **{f"{p}_{k}": 0 for p in ("hit", "all") for k in ("spike", "drift", "stuck")},
        }
    ] * 10
    got = summary(rows, readings=1440, resamples=50)
    assert got["false_alarms_per_sensor_day"] == 2.0 and got["series"] == 10
    assert abs(got["f1"] - 4 / 7) < 1e-4 and got["f1_95"] == [0.571, 0.571]  # identical series: no spread


def test_the_threshold_rule_flags_a_spike_and_a_stuck_stretch() -> None:
    rng = np.random.default_rng(0)
    values = 50 + rng.normal(0, 1, 400)
    values[300] += 12  # a spike in the held-out half
    values[340:360] = values[339]  # a stuck sensor
    pred = Rule(k=5, s=0.1).predict(values, n_train=200)
    assert pred[300] == 1 and pred[349:360].all()  # once the last 10 readings are all stuck
    assert pred[200:290].sum() <= 2  # quiet readings stay quiet


def test_every_candidate_is_judged_on_the_same_held_out_series() -> None:
    report = evaluate(held_out=20, tuning=10, readings=720, workers=1)
    assert set(report["results"]) == {
        "one-class SVM, original",
        "one-class SVM, default",
        *[name for name in report["results"] if name.startswith("threshold rule")],
    }
    assert len(report["results"]) == 3 and all(r["series"] == 20 for r in report["results"].values())
    assert report["best"] in report["results"]
