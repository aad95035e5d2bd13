"""The FAQ matcher: one multiclass scikit-learn pipeline, one class per original question.

``predict_proba`` scores a question against *every* original in one pass (one sparse
TF-IDF row times one weight matrix), which is what makes it fast compared with the original
architecture's pairwise approach (see :mod:`faq.baseline`).

Every setting here is chosen so that skl2onnx reproduces the pipeline exactly (checked by
``tests/unit/faq/test_faq_parity.py``):

* the pipeline sees text already cleaned by :func:`faq.data.clean_text` (lower-cased), so the
  vectorizer does no lower-casing of its own (ONNX's ``StringNormalizer`` lower-cases with a C
  locale, Python with Unicode rules);
* the token pattern is an explicit ASCII class: ONNX Runtime tokenizes with RE2, whose ``\\w``
  and ``\\b`` are ASCII-only while Python's are Unicode, so the default pattern would split
  ``café`` differently. ``$`` and ``_`` are kept because they are parts of JavaScript names,
  and single characters too (unlike scikit-learn's default), so ``0.1 + 0.2`` still has tokens;
* ``sublinear_tf`` stays off: skl2onnx's converter does not reproduce it (differences of 0.03
  in TF-IDF values were measured);
* word unigrams only: character n-grams do not convert (``char_wb``) or do not match
  (``char``), and bigrams did not help accuracy on this data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from faq.calibration import Calibration
from faq.data import FaqDataset, clean_text
from faq.scope import CONFIDENT, Scope

TOKEN_PATTERN = r"[a-z0-9_$]+"
# Inverse regularisation strength; 1-100 scored within noise on repeated splits, 10 is the middle.
C = 10.0
SEED = 42


def build_pipeline() -> Pipeline:
    """TF-IDF (settings skl2onnx converts exactly) followed by multinomial logistic regression."""
    return Pipeline(
        [
            ("tfidf", TfidfVectorizer(lowercase=False, token_pattern=TOKEN_PATTERN)),
            ("clf", LogisticRegression(C=C, max_iter=5000, random_state=SEED)),
        ]
    )


def training_data(ds: FaqDataset, duplicates: pd.DataFrame) -> tuple[list[str], list[int]]:
    """Texts and labels: the given duplicates, plus each original's own question and answer.

    The original's question is what a user will most often paraphrase; the answer adds the
    vocabulary of the solution (``splice``, ``includes``), which users often name in their
    question. On repeated splits adding answers raised Acc@1 by about 9 points.
    """
    originals = ds.originals
    texts = [*duplicates["text"], *originals["question"], *originals["answer"]]
    labels = [*duplicates["faq_id"], *originals["faq_id"], *originals["faq_id"]]
    return [str(t) for t in texts], [int(label) for label in labels]


@dataclass
class FaqModel:
    """A fitted pipeline plus the originals in the pipeline's class order."""

    pipeline: Pipeline
    originals: pd.DataFrame  # faq_id, question, answer (+ their *_text as read); row i is column i
    calibration: Calibration | None = None  # set by the export (faq.calibration.fit_calibration)
    scope: Scope | None = None  # set by the export (faq.scope.fit_scope)

    @classmethod
    def fit(cls, ds: FaqDataset, duplicates: pd.DataFrame | None = None) -> FaqModel:
        """Fit on ``duplicates`` (default: all of them, which is what is served)."""
        duplicates = ds.duplicates if duplicates is None else duplicates
        texts, labels = training_data(ds, duplicates)
        pipeline = build_pipeline().fit(texts, labels)
        classes = pipeline.classes_
        originals = ds.originals.set_index("faq_id").loc[classes].reset_index()
        shown = [c for c in ("question_text", "answer_text") if c in originals]
        return cls(pipeline, originals[["faq_id", "question", "answer", *shown]])

    @property
    def faq_ids(self) -> np.ndarray:
        return self.pipeline.classes_.astype(np.int64)

    def predict_proba_clean(self, cleaned: Sequence[str]) -> np.ndarray:
        """Probabilities for texts already passed through ``clean_text`` (what ONNX receives),
        calibrated where the model has a calibration."""
        proba = self.pipeline.predict_proba(list(cleaned))
        return proba if self.calibration is None else self.calibration.apply(proba)

    def matched(self, cleaned: Sequence[str]) -> np.ndarray:
        """``MATCHED`` as served: in scope, or a top match at least ``CONFIDENT`` likely right."""
        if self.scope is None:
            return np.ones(len(cleaned), dtype=bool)
        confident = self.predict_proba_clean(cleaned).max(axis=1) >= CONFIDENT
        return self.scope.matched(list(cleaned)) | confident

    def predict_proba(self, questions: Sequence[str]) -> np.ndarray:
        """``(len(questions), n_originals)`` match probabilities for raw questions."""
        return self.predict_proba_clean([clean_text(q) for q in questions])

    def top_k(self, question: str, k: int = 5) -> pd.DataFrame:
        """The ``k`` best originals for one question, best first, with a ``score`` column."""
        proba = self.predict_proba([question])[0]
        order = np.argsort(-proba, kind="stable")[:k]
        result = self.originals.iloc[order].reset_index(drop=True)
        return result.assign(score=proba[order])


def ranks(scores: np.ndarray, faq_ids: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """1-based rank of the true original in each row of ``scores`` (columns are ``faq_ids``).

    The rank is the position in the list a user is shown: originals sorted by descending score,
    ties in column order (a stable sort, as the server's post-processing does).
    """
    column = {int(f): i for i, f in enumerate(faq_ids)}
    idx = np.array([column[int(t)] for t in truth])
    order = np.argsort(-scores, axis=1, kind="stable")
    return (order == idx[:, None]).argmax(axis=1).astype(np.int64) + 1
