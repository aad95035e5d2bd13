"""Unit tests for the pairwise baseline (faq.baseline) and the evaluation (faq.evaluate)."""

from __future__ import annotations

import numpy as np
import pytest

from faq.baseline import PairwiseBaseline, _training_pairs
from faq.data import FaqDataset, load_dataset, split_duplicates
from faq.evaluate import Accuracy, Latency, evaluate, time_interleaved


@pytest.fixture(scope="module")
def small() -> FaqDataset:
    """Ten originals and their duplicates: enough to train both models in seconds."""
    ds = load_dataset()
    keep = ds.originals["faq_id"].head(10)
    return FaqDataset(
        ds.originals[ds.originals["faq_id"].isin(keep)].reset_index(drop=True),
        ds.duplicates[ds.duplicates["faq_id"].isin(keep)].reset_index(drop=True),
    )


def test_training_pairs_are_one_match_and_random_non_matches() -> None:
    faq_ids = np.array([1, 2, 3, 4, 5, 6])
    dupes = np.array([3, 3, 6])
    q_rows, o_rows = _training_pairs(dupes, faq_ids, per_duplicate=4)
    assert len(q_rows) == 3 * 4
    for q in range(3):
        originals = faq_ids[o_rows[q_rows == q]]
        assert originals[0] == dupes[q]  # the match first
        assert len(set(originals)) == 4  # no original twice
        assert (originals[1:] != dupes[q]).all()


def test_baseline_trains_on_sampled_pairs_and_scores_every_pair(
    small: FaqDataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    import faq.baseline

    calls = []
    real = faq.baseline._training_pairs

    def spy(dup_ids, faq_ids, per_duplicate):
        calls.append((len(dup_ids), len(faq_ids), per_duplicate))
        return real(dup_ids, faq_ids, per_duplicate)

    monkeypatch.setattr(faq.baseline, "_training_pairs", spy)
    train, test = split_duplicates(small)
    base = PairwiseBaseline.fit(small, train, max_features=100, max_iter=20, pairs_per_duplicate=5)
    assert calls == [(len(train), len(small.originals), 5)]
    assert base.trees.class_weight == "balanced"
    proba = base.predict_proba(list(test["text"][:3]))
    assert proba.shape == (3, len(small.originals))
    assert ((proba >= 0) & (proba <= 1)).all()
    assert list(base.faq_ids) == list(small.originals["faq_id"])


def test_accuracy_and_latency_summaries() -> None:
    acc = Accuracy.of(np.array([1, 1, 2, 4]))
    assert (acc.acc1, acc.acc3, acc.mean_rank, acc.n) == (0.5, 0.75, 2.0, 4)
    lat = Latency.of([0.001] * 19 + [0.011])
    assert lat.median_ms == pytest.approx(1.0) and lat.p95_ms == pytest.approx(1.5)


def test_time_interleaved_runs_every_scorer_on_every_question() -> None:
    calls: list[tuple[str, str]] = []
    result = time_interleaved(
        {"a": lambda q: calls.append(("a", q)), "b": lambda q: calls.append(("b", q))},
        ["q1", "q2"],
        repeats=2,
    )
    assert set(result) == {"a", "b"}
    # one warm-up each, then a/b alternate question by question
    assert calls[2:6] == [("a", "q1"), ("b", "q1"), ("a", "q2"), ("b", "q2")]


def test_evaluate_reports_both_tables(small: FaqDataset) -> None:
    report = evaluate(small, repeats=1)
    assert "| model | Acc@1 | Acc@3 | mean rank | training time |" in report
    assert "| model | median | p95 |" in report
    assert "**ours**" in report and "original architecture" in report
    assert "python -m faq.evaluate" in report and "UTC" in report
    assert "10 originals" in report
