"""The three image ensembles on a real Triton server, against the same ONNX run locally."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from imaging.client import classify, infer_batch
from imaging.labels import DOMESTIC_CAT_IDS, ESPRESSO_ID, imagenet_labels
from imaging.local import LocalClassifier
from imaging.networks import NETWORKS
from imaging.samples import sample_bytes, sample_path
from serving.client import Endpoint, RejectedInput
from serving.triton import TritonServer

PHOTOS = ("coffee", "chelsea", "rocket", "grace_hopper")
ATOL = 1e-5  # batch composition changes ONNX Runtime's float rounding a little


def assert_same_top5(
    ids: np.ndarray, scores: np.ndarray, ref_ids: np.ndarray, ref_scores: np.ndarray
) -> None:
    """Same probabilities; same classes except where two probabilities tie within ATOL."""
    np.testing.assert_allclose(scores, ref_scores, atol=ATOL)
    for rank, class_id in enumerate(ids):
        tied = np.isclose(ref_scores, ref_scores[rank], atol=ATOL)
        assert class_id == ref_ids[rank] or class_id in set(ref_ids[tied]), (rank, ids, ref_ids)


def test_efficientnet_puts_espresso_first_for_coffee(http_endpoint: Endpoint) -> None:
    (top5,) = classify(http_endpoint, "efficientnet_lite0", [sample_path("coffee")])
    assert top5[0].class_id == ESPRESSO_ID and top5[0].label == "espresso"
    assert top5[0].score > 0.5


def test_efficientnet_finds_a_cat_in_chelsea(http_endpoint: Endpoint) -> None:
    (top5,) = classify(http_endpoint, "efficientnet_lite0", [sample_path("chelsea")])
    assert {p.class_id for p in top5} & DOMESTIC_CAT_IDS
    assert top5[0].class_id in DOMESTIC_CAT_IDS
    assert "cat" in top5[0].label


@pytest.mark.parametrize("model", sorted(NETWORKS))
def test_a_batch_of_four_photos_gives_sorted_top5(http_endpoint: Endpoint, model: str) -> None:
    images = [sample_bytes(name) for name in PHOTOS]
    results = infer_batch(http_endpoint, model, images)
    assert len(results) == 4
    labels = imagenet_labels()
    local = LocalClassifier(model)
    local_ids, local_scores = local.top_k(local.preprocess(images))
    for row, ids, scores in zip(results, local_ids, local_scores, strict=True):
        served = np.array([p.score for p in row], np.float32)
        assert len(row) == 5
        assert np.all(np.diff(served) <= 0), "scores must be sorted, best first"
        assert np.all((served >= 0) & (served <= 1)) and served.sum() <= 1 + 1e-5
        assert [p.label for p in row] == [labels[p.class_id] for p in row]
        # the server computes what the same ONNX file computes locally on the same tensors
        assert_same_top5(np.array([p.class_id for p in row]), served, ids, scores)


@pytest.mark.parametrize("model", sorted(NETWORKS))
def test_grpc_and_http_agree(http_endpoint: Endpoint, grpc_endpoint: Endpoint, model: str) -> None:
    images = [sample_bytes("china"), sample_bytes("motorcycle")]
    by_http = classify(http_endpoint, model, images)
    by_grpc = classify(grpc_endpoint, model, images)
    for a, b in zip(by_http, by_grpc, strict=True):
        assert_same_top5(
            np.array([p.class_id for p in a]),
            np.array([p.score for p in a]),
            np.array([p.class_id for p in b]),
            np.array([p.score for p in b]),
        )


def test_more_images_than_the_max_batch_are_split(http_endpoint: Endpoint) -> None:
    images = [sample_bytes(name) for name in PHOTOS] * 3  # 12 > max_batch_size 8
    results = classify(http_endpoint, "efficientnet_lite0", images)
    assert len(results) == 12
    assert results[0][0].class_id == results[4][0].class_id == results[8][0].class_id == ESPRESSO_ID


def test_a_bad_request_does_not_fail_others_batched_with_it(http_endpoint: Endpoint) -> None:
    """Concurrent requests share dynamic batches; only the one with a broken image fails."""
    good, bad = sample_bytes("coffee"), b"\x89PNG\r\n\x1a\n not really"
    payloads = [good, bad, good, good, bad, good, good, good]

    def send(data: bytes) -> int | str:
        try:
            return infer_batch(http_endpoint, "efficientnet_lite0", [data])[0][0].class_id
        except RejectedInput as exc:
            return str(exc)

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(send, payloads))
    for data, outcome in zip(payloads, outcomes, strict=True):
        if data is good:
            assert outcome == ESPRESSO_ID
        else:
            assert isinstance(outcome, str) and outcome.startswith("IMAGE[0]")


@pytest.mark.parametrize("model", ["resnet152_pytorch", "resnet152_tensorflow"])
def test_random_weight_networks_are_announced_loudly(triton_server: TritonServer, model: str) -> None:
    log = triton_server.log_path.read_text(errors="replace")
    from imaging.artifacts import read_provenance
    from serving.paths import ARTIFACTS_DIR

    if read_provenance(ARTIFACTS_DIR, model)["weights"] == "random":
        assert f"!!! {model}: RANDOM WEIGHTS" in log
    else:
        assert f"{model}: weights " in log
