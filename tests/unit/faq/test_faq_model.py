"""Unit tests for the FAQ matcher (faq.model)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from faq.data import DEFAULT_DATA_DIR, ORIGINALS_FILE, FaqDataset, load_dataset
from faq.model import TOKEN_PATTERN, FaqModel, build_pipeline, ranks, training_data


@pytest.fixture(scope="module")
def dataset() -> FaqDataset:
    return load_dataset()


@pytest.fixture(scope="module")
def model(dataset: FaqDataset) -> FaqModel:
    return FaqModel.fit(dataset)


def test_pipeline_settings_are_the_ones_skl2onnx_reproduces() -> None:
    tfidf = build_pipeline().named_steps["tfidf"]
    assert tfidf.lowercase is False  # clean_text lower-cases, once, in Python
    assert tfidf.token_pattern == TOKEN_PATTERN
    assert tfidf.analyzer == "word" and tfidf.ngram_range == (1, 1)
    assert tfidf.sublinear_tf is False


def test_token_pattern_is_ascii_and_keeps_js_names_and_digits() -> None:
    analyzer = build_pipeline().named_steps["tfidf"].build_analyzer()
    assert analyzer("use arr.splice(i, 1) or $.each _x café 0.1") == [
        "use",
        "arr",
        "splice",
        "i",
        "1",
        "or",
        "$",
        "each",
        "_x",
        "caf",
        "0",
        "1",
    ]


def test_training_data_adds_each_originals_question_and_answer(dataset: FaqDataset) -> None:
    dupes = dataset.duplicates.head(10)
    texts, labels = training_data(dataset, dupes)
    n = len(dataset.originals)
    assert len(texts) == len(labels) == 10 + 2 * n
    assert texts[:10] == list(dupes["text"])
    assert texts[10 : 10 + n] == list(dataset.originals["question"])
    assert texts[10 + n :] == list(dataset.originals["answer"])
    assert labels[10 : 10 + n] == labels[10 + n :] == list(dataset.originals["faq_id"])


def test_one_probability_per_original_summing_to_one(model: FaqModel, dataset: FaqDataset) -> None:
    proba = model.predict_proba(["how do I remove an item from an array", "json parse error"])
    assert proba.shape == (2, len(dataset.originals))
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-6)
    assert list(model.originals["faq_id"]) == list(model.faq_ids)


def test_every_original_question_ranks_itself_first(model: FaqModel) -> None:
    """The raw HTML text from the data file, cleaned by the model, finds its own original."""
    raw = pd.read_csv(DEFAULT_DATA_DIR / ORIGINALS_FILE, sep="\t").set_index("Id")["Text0"]
    questions = list(raw.loc[model.faq_ids])
    r = ranks(model.predict_proba(questions), model.faq_ids, model.faq_ids)
    missed = [int(f) for f, rank in zip(model.faq_ids, r, strict=True) if rank != 1]
    assert not missed, f"originals not ranked first for their own question: {missed}"


def test_top_k_is_sorted_and_has_the_original_text(model: FaqModel) -> None:
    top = model.top_k("how do I remove a specific item from an array?", k=5)
    assert len(top) == 5
    assert list(top["score"]) == sorted(top["score"], reverse=True)
    row = model.originals.set_index("faq_id").loc[top.loc[0, "faq_id"]]
    assert top.loc[0, "question"] == row["question"]
    assert "remove" in top.loc[0, "question"] and "array" in top.loc[0, "question"]


def test_training_is_deterministic(dataset: FaqDataset) -> None:
    small = FaqDataset(
        dataset.originals.head(8),
        dataset.duplicates[dataset.duplicates["faq_id"].isin(dataset.originals["faq_id"].head(8))],
    )
    a = FaqModel.fit(small).predict_proba(["remove from array"])
    b = FaqModel.fit(small).predict_proba(["remove from array"])
    np.testing.assert_array_equal(a, b)


def test_ranks_are_positions_in_the_shown_list() -> None:
    scores = np.array([[0.1, 0.7, 0.2], [0.5, 0.5, 0.0], [0.2, 0.3, 0.5]])
    faq_ids = np.array([10, 20, 30])
    assert list(ranks(scores, faq_ids, np.array([20, 20, 10]))) == [1, 2, 3]
