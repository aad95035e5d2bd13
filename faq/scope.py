"""Does the FAQ answer this question at all? The "no good match" decision.

A second, binary model beside the matcher: the same TF-IDF settings, fitted on the same FAQ
texts, and a logistic regression that tells the FAQ's texts (originals' questions and answers,
their titles alone, duplicates) from off-topic questions written for this project
(``faq/datasets/off_topic/tune.csv``: other languages, CSS, SQL, shell and git, chatter,
everyday life, JavaScript topics the FAQ does not cover). Its probability, times "the question
has at least one word the FAQ knows", is served as the classifier's last column; ``MATCHED`` is
that probability at or above a threshold, or a top match the matcher is at least
:data:`CONFIDENT` sure of (its calibrated ``SCORE``: the model of scope alone turns down some
plainly worded real questions, "how do I remove a specific item from an array?"). The threshold
is chosen out of fold (every duplicate and off-topic question scored by a model trained without
it, and questions written by people for the FAQ, never trained on:
``faq/datasets/user_questions/tune.csv`` for the shipped set) to make the share of real
questions answered and the share of off-topic ones refused both as high as possible. The
``eval.csv`` files beside them are never trained or tuned on: they and the held-out duplicates
are what the reported figures are measured on (``faq.evaluate``). The titles are positives
because users ask in whole sentences ("how do I remove ... from an array"), while duplicates are
often terse.

The default off-topic questions suit a programming FAQ; a FAQ of another kind brings its own
(``off_topic.csv`` with a ``question`` column, beside ``faq.csv``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from faq import DATASET_DIR
from faq.text import clean_text

OFF_TOPIC_DIR = DATASET_DIR.parent / "off_topic"
TUNE_FILE, EVAL_FILE = OFF_TOPIC_DIR / "tune.csv", OFF_TOPIC_DIR / "eval.csv"
USER_DIR = DATASET_DIR.parent / "user_questions"  # for the shipped set: faq_id, question
USER_TUNE, USER_EVAL = USER_DIR / "tune.csv", USER_DIR / "eval.csv"
OWN_FILE = "off_topic.csv"  # a user's own, in their FAQ folder
C = 10.0  # 3-30 measured within a point of each other (docs/faq.md)
CONFIDENT = 0.8  # a top match at least this likely to be right is an answer, whatever the scope
FOLDS = 5


def off_topic(path: Path = TUNE_FILE) -> list[str]:
    """The cleaned questions of an off-topic file (a ``question`` column)."""
    texts = [clean_text(str(q)) for q in pd.read_csv(path, dtype=str)["question"]]
    return [t for t in texts if t]


@dataclass
class Scope:
    """The fitted scope model and its threshold."""

    pipeline: Pipeline
    threshold: float

    def in_scope(self, cleaned: list[str]) -> np.ndarray:
        """``(n, 1)`` probability that the FAQ covers each question; 0 for a question without any
        word the FAQ knows (emoji, gibberish, another alphabet)."""
        features = self.pipeline.named_steps["tfidf"].transform(cleaned)
        known = np.asarray(features.sum(axis=1) > 0, dtype=np.float32).reshape(-1, 1)
        proba = self.pipeline.named_steps["clf"].predict_proba(features)[:, 1:2].astype(np.float32)
        return proba * known

    def matched(self, cleaned: list[str]) -> np.ndarray:
        return self.in_scope(cleaned)[:, 0] >= self.threshold


def _fit(ds: object, duplicates: pd.DataFrame, off_texts: list[str]) -> Pipeline:
    """The vectorizer exactly as the matcher's (the same settings on the same texts, so the served
    graph computes the TF-IDF row once for both), and the logistic regression on it."""
    from faq.model import TOKEN_PATTERN, training_data

    pipeline = Pipeline(
        [
            ("tfidf", TfidfVectorizer(lowercase=False, token_pattern=TOKEN_PATTERN)),
            ("clf", LogisticRegression(C=C, max_iter=5000, class_weight="balanced", random_state=0)),
        ]
    )
    pipeline.named_steps["tfidf"].fit(training_data(ds, duplicates)[0])  # type: ignore[arg-type]
    in_texts = _positives(ds, duplicates)
    features = pipeline.named_steps["tfidf"].transform([*in_texts, *off_texts])
    labels = np.r_[np.ones(len(in_texts)), np.zeros(len(off_texts))]
    pipeline.named_steps["clf"].fit(features, labels)
    return pipeline


def best_threshold(real: list[np.ndarray], off: np.ndarray) -> float:
    """The threshold that makes min(share of real answered, share of off-topic refused) largest,
    the real share being the mean over the groups of real questions given; the lowest such
    (answer when in doubt)."""
    groups = [r for r in real if len(r)]
    candidates = np.unique(np.r_[np.concatenate(groups), off, 0.5])
    rates = [min(np.mean([(r >= t).mean() for r in groups]), (off < t).mean()) for t in candidates]
    return float(candidates[int(np.argmax(rates))])


def _positives(ds: object, duplicates: pd.DataFrame) -> list[str]:
    from faq.model import training_data

    texts, _ = training_data(ds, duplicates)  # type: ignore[arg-type]
    originals = ds.originals  # type: ignore[attr-defined]
    titles = [clean_text(t) for t in originals["question_text"]] if "question_text" in originals else []
    return [*texts, *(t for t in titles if t)]


def user_questions(path: Path = USER_TUNE) -> list[str]:
    return [clean_text(str(q)) for q in pd.read_csv(path, dtype=str)["question"]]


def fit_scope(ds: object, duplicates: pd.DataFrame, off_texts: list[str], users: list[str] = ()) -> Scope:  # type: ignore[assignment]
    """The scope model on all the texts, at a threshold chosen out of fold (0.5 where there are
    too few duplicates to choose it on); ``users``: people's questions, for the choice only."""
    if len(duplicates) < 2 * FOLDS:
        return Scope(_fit(ds, duplicates, off_texts), 0.5)
    dup_parts = np.array_split(np.random.default_rng(0).permutation(len(duplicates)), FOLDS)
    off_parts = np.array_split(np.random.default_rng(1).permutation(len(off_texts)), FOLDS)
    real, asked, off = [], [], []
    for dup_part, off_part in zip(dup_parts, off_parts, strict=True):
        held = duplicates.iloc[dup_part]
        others = [t for i, t in enumerate(off_texts) if i not in set(off_part)]
        fold = Scope(_fit(ds, duplicates.drop(duplicates.index[dup_part]), others), 0.5)
        real.append(fold.in_scope(list(held["text"]))[:, 0])
        asked.append(fold.in_scope(list(users))[:, 0] if users else np.array([]))
        off.append(fold.in_scope([off_texts[i] for i in off_part])[:, 0])
    threshold = best_threshold([np.concatenate(real), np.concatenate(asked)], np.concatenate(off))
    return Scope(_fit(ds, duplicates, off_texts), threshold)


def off_topic_for(folder: Path | None) -> list[str]:
    """A user's own off-topic questions where their FAQ folder has them, else the project's."""
    own = folder / OWN_FILE if folder is not None else None
    return off_topic(own if own is not None and own.is_file() else TUNE_FILE)
