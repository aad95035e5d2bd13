"""``faq_match`` through a real Triton server, over HTTP and gRPC."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from tritonclient.utils import InferenceServerException

from faq.client import MODEL_NAME, OUTPUTS, ask
from faq.data import load_dataset
from faq.specs import MAX_BATCH_SIZE, TOP_K
from faq.text import clean_text
from serving.client import Endpoint

if TYPE_CHECKING:
    from conftest import FaqTable


def _infer(endpoint: Endpoint, texts: list[bytes]) -> dict[str, np.ndarray]:
    module = endpoint.module()
    data = np.array([[t] for t in texts], dtype=object)
    tensor = module.InferInput("TEXT", list(data.shape), "BYTES")
    tensor.set_data_from_numpy(data)
    client = endpoint.client()
    try:
        result = client.infer(MODEL_NAME, [tensor])
    finally:
        client.close()
    return {name: result.as_numpy(name) for name in OUTPUTS}


def test_served_table_is_the_shipped_data_set(faq_table: FaqTable) -> None:
    ds = load_dataset()
    assert sorted(faq_table.faq_id) == sorted(ds.originals["faq_id"])
    assert len(faq_table.faq_id) >= TOP_K


def test_model_is_ready_with_the_published_interface(endpoint: Endpoint) -> None:
    client = endpoint.client()
    try:
        assert client.is_model_ready(MODEL_NAME)
        meta = client.get_model_metadata(MODEL_NAME)
    finally:
        client.close()
    if endpoint.protocol == "grpc":
        inputs = [(t.name, t.datatype, list(t.shape)) for t in meta.inputs]
        outputs = [(t.name, t.datatype, list(t.shape)) for t in meta.outputs]
    else:
        inputs = [(t["name"], t["datatype"], t["shape"]) for t in meta["inputs"]]
        outputs = [(t["name"], t["datatype"], t["shape"]) for t in meta["outputs"]]
    assert inputs == [("TEXT", "BYTES", [-1, 1])]
    assert outputs == [
        ("FAQ_ID", "INT64", [-1, TOP_K]),
        ("SCORE", "FP32", [-1, TOP_K]),
        ("FAQ_QUESTION", "BYTES", [-1, TOP_K]),
        ("FAQ_ANSWER", "BYTES", [-1, TOP_K]),
        ("MATCHED", "BOOL", [-1, 1]),
    ]


def test_each_original_question_returns_that_original_first(endpoint: Endpoint, faq_table: FaqTable) -> None:
    """One request per original, with the raw HTML question text a user would paste."""
    client = endpoint.client()
    try:
        wrong = []
        for faq_id, raw in zip(faq_table.faq_id, faq_table.raw_question, strict=True):
            (matches,) = ask(endpoint, [raw], client=client)
            if matches[0].faq_id != faq_id:
                wrong.append((faq_id, matches[0].faq_id))
    finally:
        client.close()
    assert not wrong, f"(expected, got) first: {wrong}"


def test_batched_requests_return_each_original_first(endpoint: Endpoint, faq_table: FaqTable) -> None:
    texts = [q.encode() for q in faq_table.raw_question]
    first: list[int] = []
    for start in range(0, len(texts), MAX_BATCH_SIZE):
        out = _infer(endpoint, texts[start : start + MAX_BATCH_SIZE])
        assert out["FAQ_ID"].shape == (len(texts[start : start + MAX_BATCH_SIZE]), TOP_K)
        first.extend(int(i) for i in out["FAQ_ID"][:, 0])
    assert first == faq_table.faq_id


def test_outputs_are_sorted_top_k_with_the_originals_text(endpoint: Endpoint, faq_table: FaqTable) -> None:
    questions = [
        "how do I remove a specific item from an array in JavaScript?",
        "why does 0.1 + 0.2 not equal 0.3 in js",
        "caf\u00e9 \u65e5\u672c\u8a9e \U0001f600 unicode text",
    ]
    out = _infer(endpoint, [q.encode() for q in questions])
    assert out["FAQ_ID"].dtype == np.int64 and out["SCORE"].dtype == np.float32
    for name in OUTPUTS[:4]:
        assert out[name].shape == (len(questions), TOP_K), name
    assert out["MATCHED"].shape == (len(questions), 1) and out["MATCHED"][:2, 0].all()
    scores = out["SCORE"]
    assert np.all(np.diff(scores, axis=1) <= 0), "scores must be sorted, best first"
    assert np.all((scores >= 0) & (scores <= 1))
    by_id = {
        f: (q, a) for f, q, a in zip(faq_table.faq_id, faq_table.question, faq_table.answer, strict=True)
    }
    for row in range(len(questions)):
        assert len(set(out["FAQ_ID"][row].tolist())) == TOP_K  # K distinct originals
        for col in range(TOP_K):
            question, answer = by_id[int(out["FAQ_ID"][row, col])]
            assert out["FAQ_QUESTION"][row, col].decode() == question
            assert out["FAQ_ANSWER"][row, col].decode() == answer


def test_answers_agree_with_scikit_learn(endpoint: Endpoint, faq_table: FaqTable) -> None:
    """The served scores are the trained model's (same data, same recipe), within 1e-4.

    Ranks are compared up to near-ties: float32 ONNX and float64 scikit-learn may order two
    originals whose scores differ by less than the tolerance differently.
    """
    from export.faq_onnx import served_model
    from faq.scope import user_questions

    model = served_model(load_dataset(), users=user_questions())
    questions = [
        "remove element from array js",
        "deep copy an object",
        "what does use strict do",
        "<p>How to <code>parseInt</code> a string?</p>",
    ]
    proba = model.predict_proba(questions)
    column = {int(f): i for i, f in enumerate(model.faq_ids)}
    matched = model.matched([clean_text(q) for q in questions])
    for row, matches in enumerate(ask(endpoint, questions)):
        assert all(m.matched == matched[row] for m in matches), (questions[row], matched[row])
        expected = np.sort(proba[row])[::-1][:TOP_K]
        np.testing.assert_allclose([m.score for m in matches], expected, atol=1e-4)
        for m in matches:
            assert abs(proba[row, column[m.faq_id]] - m.score) < 1e-4, (questions[row], m)
        assert matches[0].faq_id == int(model.faq_ids[proba[row].argmax()])


def test_ask_top_k_and_empty_list(endpoint: Endpoint) -> None:
    (matches,) = ask(endpoint, ["how to deep clone an object"], top_k=2)
    assert [m.rank for m in matches] == [1, 2]
    assert ask(endpoint, []) == []


def test_concurrent_requests_with_one_bad_one(triton_server, faq_table: FaqTable) -> None:
    """Requests batched together by the dynamic batcher: the bad one fails alone."""
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(triton_server.http_url, concurrency=16)
    try:
        pending = []
        texts = [q.encode() for q in faq_table.raw_question[:15]]
        texts.insert(7, b"\xff\xfe not utf-8")
        for text in texts:
            tensor = httpclient.InferInput("TEXT", [1, 1], "BYTES")
            tensor.set_data_from_numpy(np.array([[text]], dtype=object))
            pending.append(client.async_infer(MODEL_NAME, [tensor]))
        outcomes = []
        for request in pending:
            try:
                outcomes.append(int(request.get_result().as_numpy("FAQ_ID")[0, 0]))
            except InferenceServerException as exc:
                outcomes.append(exc.message())
    finally:
        client.close()
    assert "not valid UTF-8" in str(outcomes[7])
    del outcomes[7]
    assert outcomes == faq_table.faq_id[:15]
