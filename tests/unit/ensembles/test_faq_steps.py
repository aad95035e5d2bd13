"""The FAQ ensemble's Python steps, run outside Triton on the shared stand-in (``ensembles.testing``).

The integration tests run them inside the real server; these check the per-request logic fast:
one bad request in a dynamic batch gets its own error and the others their answers.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ensembles.testing import Request as _Request
from ensembles.testing import TritonError as _TritonError
from ensembles.testing import load_model
from faq.specs import MAX_TEXT_BYTES, POSTPROCESS, PREPROCESS, TABLE_FILE, TOP_K


def _texts(*values: bytes) -> np.ndarray:
    return np.array([[v] for v in values], dtype=object)


@pytest.fixture()
def preprocess():
    return load_model(PREPROCESS)


def test_preprocess_cleans_with_faq_data_clean_text(preprocess) -> None:
    from faq.data import clean_text

    raw = "<p>How do I <b>REMOVE</b> an item?</p><pre><code>arr.x()</code></pre>"
    (response,) = preprocess.execute([_Request(TEXT=_texts(raw.encode()))])
    assert response.error is None
    assert response.outputs["CLEAN_TEXT"].tolist() == [[clean_text(raw).encode()]]


def test_preprocess_reads_the_limit_from_the_config(preprocess) -> None:
    assert preprocess.step_instance.max_bytes == MAX_TEXT_BYTES


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "empty"),
        (b"   \n\t ", "empty"),
        (b"<p></p><br/>", "empty"),
        (b"\xff\xfeabc", "not valid UTF-8 (byte 0xff at offset 0)"),
        ("caf\u00e9".encode("latin-1"), "not valid UTF-8"),
        (b"a" * (MAX_TEXT_BYTES + 1), f"limit is {MAX_TEXT_BYTES} bytes"),
    ],
)
def test_preprocess_rejects_bad_text_with_invalid_arg(preprocess, raw: bytes, message: str) -> None:
    (response,) = preprocess.execute([_Request(TEXT=_texts(raw))])
    assert response.error is not None
    assert response.error.code == _TritonError.INVALID_ARG
    assert message in response.error.message
    assert response.error.message.startswith("TEXT[0]")


def test_preprocess_accepts_text_at_the_limit(preprocess) -> None:
    (response,) = preprocess.execute([_Request(TEXT=_texts(b"a" * MAX_TEXT_BYTES))])
    assert response.error is None


def test_one_bad_request_in_a_batch_fails_alone(preprocess) -> None:
    requests = [
        _Request(TEXT=_texts(b"remove item from array")),
        _Request(TEXT=_texts(b"fine", b"\xc3\x28")),  # second row of this request is broken
        _Request(TEXT=_texts("caf\u00e9 is unicode".encode())),
    ]
    good, bad, good2 = preprocess.execute(requests)
    assert good.error is None and good2.error is None
    assert good2.outputs["CLEAN_TEXT"].tolist() == [["caf\u00e9 is unicode".encode()]]
    assert bad.error is not None and bad.error.message.startswith("TEXT[1] is not valid UTF-8")


@pytest.fixture()
def postprocess(tmp_path: Path):
    table = {
        "faq_id": [11, 22, 33, 44, 55, 66],
        "question": ["q1", "q2", "q3 caf\u00e9", "q4", "q5", "q6"],
        "answer": ["a1", "a2", "a3", "a4", "a5", "a6"],
        "in_scope_threshold": 0.5,
    }
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / TABLE_FILE).write_text(json.dumps(table))
    return load_model(POSTPROCESS, tmp_path / "1")


def _scored(proba: np.ndarray, in_scope: float = 0.9) -> _Request:
    """The classifier's output: a probability per original, then the in-scope probability."""
    return _Request(PROBABILITIES=np.hstack([proba, np.full((len(proba), 1), in_scope, np.float32)]))


def test_postprocess_returns_top_k_sorted_with_text(postprocess) -> None:
    proba = np.array(
        [[0.05, 0.10, 0.50, 0.05, 0.20, 0.10], [0.9, 0.02, 0.02, 0.02, 0.02, 0.02]], dtype=np.float32
    )
    (response,) = postprocess.execute([_scored(proba)])
    assert response.error is None
    out = response.outputs
    assert out["FAQ_ID"].shape == out["SCORE"].shape == out["FAQ_QUESTION"].shape == (2, TOP_K)
    assert out["FAQ_ID"][0].tolist() == [33, 55, 22, 66, 11]  # ties (0.10, 0.05): table order
    assert out["SCORE"].dtype == np.float32 and out["FAQ_ID"].dtype == np.int64
    assert np.all(np.diff(out["SCORE"], axis=1) <= 0)
    assert out["FAQ_QUESTION"][0, 0] == "q3 caf\u00e9".encode()
    assert out["FAQ_ANSWER"][0, 0] == b"a3"
    assert out["FAQ_ID"][1, 0] == 11
    assert out["MATCHED"].tolist() == [[True], [True]] and out["MATCHED"].dtype == bool


def test_matched_is_the_in_scope_probability_at_or_above_the_tables_threshold(postprocess) -> None:
    proba = np.full((3, 6), 1 / 6, np.float32)
    request = _Request(PROBABILITIES=np.hstack([proba, np.array([[0.49], [0.5], [0.0]], np.float32)]))
    (response,) = postprocess.execute([request])
    assert response.outputs["MATCHED"].tolist() == [[False], [True], [False]]
    assert response.outputs["FAQ_ID"].shape == (3, TOP_K)  # suggestions all the same


def test_postprocess_refuses_probabilities_that_do_not_fit_the_table(postprocess) -> None:
    (response,) = postprocess.execute([_scored(np.ones((1, 4), np.float32))])
    assert response.error is not None and "disagree" in response.error.message
    assert response.error.code == _TritonError.INTERNAL  # the deployment's fault, not the client's


def test_postprocess_ranks_a_dynamic_batch_like_each_request_alone(postprocess) -> None:
    """The batch is ranked in one go; each request still gets exactly its own rows back."""
    rng = np.random.default_rng(7)
    requests = [
        _scored(rng.random((1, 6), dtype=np.float32)),
        _scored(rng.random((3, 6), dtype=np.float32), in_scope=0.2),
        _scored(np.ones((1, 5), np.float32)),  # does not fit the table
        _scored(rng.random((2, 6), dtype=np.float32)),
    ]
    together = postprocess.execute(requests)
    assert together[2].error is not None and "disagree" in together[2].error.message
    for request, response in zip(requests, together, strict=True):
        if response.error is not None:
            continue
        (alone,) = postprocess.execute([request])
        assert response.outputs.keys() == alone.outputs.keys()
        for name, value in alone.outputs.items():
            np.testing.assert_array_equal(response.outputs[name], value)
        assert len(response.outputs["FAQ_ID"]) == len(request.tensors["PROBABILITIES"])


def test_onnx_runner_scores_bytes_like_scikit_learn(tmp_path: Path) -> None:
    """The CPU runner gets TYPE_STRING as ``bytes``; it must not score their ``str()`` repr."""
    import onnx

    from export.faq_onnx import to_onnx
    from faq.data import FaqDataset, load_dataset
    from faq.model import FaqModel
    from faq.scope import fit_scope, off_topic
    from faq.specs import CLASSIFIER

    ds = load_dataset()
    keep = ds.originals["faq_id"].head(8)
    small = FaqDataset(
        ds.originals[ds.originals["faq_id"].isin(keep)],
        ds.duplicates[ds.duplicates["faq_id"].isin(keep)],
    )
    model = FaqModel.fit(small)
    model.scope = fit_scope(small, small.duplicates, off_topic())
    (tmp_path / "1").mkdir()
    onnx.save(to_onnx(model.pipeline, None, model.scope), tmp_path / "1" / "model.onnx")
    runner = load_model(CLASSIFIER, tmp_path / "1")
    texts = ["b remove an item from an array", "caf\u00e9 loop over an object's keys"]
    requests = [_Request(TEXT=_texts(t.encode())) for t in texts]
    responses = runner.execute(requests)
    served = np.vstack([r.outputs["PROBABILITIES"] for r in responses])
    np.testing.assert_allclose(served[:, :-1], model.predict_proba_clean(texts), atol=1e-4)
    np.testing.assert_allclose(served[:, -1:], model.scope.in_scope(texts), atol=1e-4)  # the last column
