"""Scores -> top-k (class id, name, probability), shared by the Triton model and the clients."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def softmax(logits: np.ndarray, axis: int = -1) -> np.ndarray:
    """Numerically stable softmax in float64, returned as float32."""
    values = np.asarray(logits, dtype=np.float64)
    values = values - values.max(axis=axis, keepdims=True)
    np.exp(values, out=values)
    values /= values.sum(axis=axis, keepdims=True)
    return values.astype(np.float32)


def top_k(scores: np.ndarray, k: int, apply_softmax: bool) -> tuple[np.ndarray, np.ndarray]:
    """``(class_ids int64 (N, k), probabilities float32 (N, k))``, sorted by probability.

    ``apply_softmax`` is for networks that end in logits (the PyTorch ResNet, EfficientNet);
    Keras' ResNet152 already ends in a softmax. Ties keep the lower class id first.
    """
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError(f"expected scores of shape (batch, classes), got {scores.shape}")
    if not 0 < k <= scores.shape[1]:
        raise ValueError(f"k={k} must be in 1..{scores.shape[1]}")
    probs = softmax(scores) if apply_softmax else scores.astype(np.float32)
    # stable sort on -p: equal probabilities keep ascending class ids
    ids = np.argsort(-probs, axis=1, kind="stable")[:, :k].astype(np.int64)
    return ids, np.take_along_axis(probs, ids, axis=1).astype(np.float32)


@dataclass(frozen=True)
class Prediction:
    class_id: int
    label: str
    score: float


def predictions(ids: np.ndarray, scores: np.ndarray, labels: Sequence[str]) -> list[list[Prediction]]:
    """Rows of top-k arrays -> lists of :class:`Prediction` (one list per image)."""
    return [
        [Prediction(int(i), labels[int(i)], float(s)) for i, s in zip(row_ids, row_scores, strict=True)]
        for row_ids, row_scores in zip(ids, scores, strict=True)
    ]
