"""A reproduction of the original architecture's matcher, to compare ours against.

The original (Azure MLAKSDeployAML) turned FAQ matching into binary classification of
*pairs*: TF-IDF features of the user's question and TF-IDF features of an original, side by
side, fed to gradient-boosted trees (LightGBM) that predict "is a duplicate of". Answering one
question means building a pair with every original and calling ``predict_proba`` on all of
them. Here the trees are scikit-learn's ``HistGradientBoostingClassifier``.

As in the original's data preparation, each training duplicate is paired with its own original
and ``pairs_per_duplicate - 1`` random other originals (its ``random_merge(..., N=20)``), and
instance weights balance matches against non-matches. The trees need dense input, so each side's
vocabulary is capped (``max_features``); the original used LightGBM on sparse, uncapped TF-IDF.
Text is cleaned by the same :func:`faq.data.clean_text` and tokenized like :mod:`faq.model`,
so the comparison is about the approach, not the preprocessing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.feature_extraction.text import TfidfVectorizer

from faq.data import FaqDataset, clean_text
from faq.model import SEED, TOKEN_PATTERN

# Tree settings from a sweep on the seed-42 split (docs/faq.md): Acc@1 rose from 0.14 (300 terms,
# 100 trees) to 0.26 (1000 terms, 300 trees at rate 0.3) and stayed there with 1000 trees (4x the
# time). The original used LightGBM with up to 8000 trees on its much larger data.
MAX_FEATURES = 1000  # per side; dense float32
MAX_ITER = 300
LEARNING_RATE = 0.3
PAIRS_PER_DUPLICATE = 20  # the original's --match default: 1 match + 19 random non-matches


def _vectorizer(max_features: int) -> TfidfVectorizer:
    return TfidfVectorizer(
        lowercase=False, token_pattern=TOKEN_PATTERN, max_features=max_features, dtype=np.float32
    )


@dataclass
class PairwiseBaseline:
    """TF-IDF(question) ++ TF-IDF(original) -> gradient-boosted trees -> P(match)."""

    question_tfidf: TfidfVectorizer
    original_tfidf: TfidfVectorizer
    trees: HistGradientBoostingClassifier
    faq_ids: np.ndarray
    original_features: np.ndarray  # dense, one row per original, precomputed once

    @classmethod
    def fit(
        cls,
        ds: FaqDataset,
        duplicates: pd.DataFrame,
        *,
        max_features: int = MAX_FEATURES,
        pairs_per_duplicate: int = PAIRS_PER_DUPLICATE,
        max_iter: int = MAX_ITER,
        learning_rate: float = LEARNING_RATE,
    ) -> PairwiseBaseline:
        originals = ds.originals
        question_tfidf = _vectorizer(max_features).fit(duplicates["text"])
        original_tfidf = _vectorizer(max_features).fit(originals["question"])
        faq_ids = originals["faq_id"].to_numpy(np.int64)
        original_features = original_tfidf.transform(originals["question"]).toarray()

        questions = question_tfidf.transform(duplicates["text"]).toarray()
        dup_faq_ids = duplicates["faq_id"].to_numpy()
        q_rows, o_rows = _training_pairs(dup_faq_ids, faq_ids, pairs_per_duplicate)
        features = np.hstack([questions[q_rows], original_features[o_rows]])
        labels = (dup_faq_ids[q_rows] == faq_ids[o_rows]).astype(np.int8)
        trees = HistGradientBoostingClassifier(
            max_iter=max_iter,
            learning_rate=learning_rate,
            early_stopping=False,
            class_weight="balanced",
            random_state=SEED,
        ).fit(features, labels)
        return cls(question_tfidf, original_tfidf, trees, faq_ids, original_features)

    def predict_proba(self, questions: Sequence[str]) -> np.ndarray:
        """``(len(questions), n_originals)``: P(match) of every (question, original) pair."""
        cleaned = [clean_text(q) for q in questions]
        q = self.question_tfidf.transform(cleaned).toarray()
        n_o = len(self.faq_ids)
        features = np.hstack([np.repeat(q, n_o, axis=0), np.tile(self.original_features, (len(q), 1))])
        return self.trees.predict_proba(features)[:, 1].reshape(len(q), n_o)


def _training_pairs(
    duplicate_faq_ids: np.ndarray, faq_ids: np.ndarray, per_duplicate: int
) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (duplicate, original): each duplicate's match plus random non-matches."""
    rng = np.random.default_rng(SEED)
    column = {int(f): i for i, f in enumerate(faq_ids)}
    q_rows, o_rows = [], []
    for q, faq_id in enumerate(duplicate_faq_ids):
        match = column[int(faq_id)]
        others = np.delete(np.arange(len(faq_ids)), match)
        negatives = rng.choice(others, size=min(per_duplicate - 1, len(others)), replace=False)
        for o in (match, *negatives):
            q_rows.append(q)
            o_rows.append(int(o))
    return np.array(q_rows), np.array(o_rows)
