"""The FAQ Python-backend models, run outside Triton with a stand-in for ``triton_python_backend_utils``.

The integration tests run them inside the real server; these check the per-request logic fast:
one bad request in a dynamic batch gets its own error and the others their answers.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from faq.specs import MAX_TEXT_BYTES, POSTPROCESS, PREPROCESS, TABLE_FILE, TOP_K
from serving.paths import PYTHON_MODELS_DIR
from serving.render import build_config


class _TritonError:
    INVALID_ARG = "INVALID_ARG"
    INTERNAL = "INTERNAL"

    def __init__(self, message: str, code: str = "INTERNAL") -> None:
        self.message, self.code = message, code


class _Tensor:
    def __init__(self, name: str, data: np.ndarray) -> None:
        self.name, self.data = name, data

    def as_numpy(self) -> np.ndarray:
        return self.data


class _Response:
    def __init__(self, output_tensors: list | None = None, error: _TritonError | None = None) -> None:
        self.outputs = {t.name: t.data for t in output_tensors or []}
        self.error = error


class _Request:
    def __init__(self, **tensors: np.ndarray) -> None:
        self.tensors = tensors


class _ModelException(Exception):
    pass


@pytest.fixture()
def pb_utils(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    module = types.ModuleType("triton_python_backend_utils")
    module.TritonError = _TritonError
    module.Tensor = _Tensor
    module.InferenceResponse = _Response
    module.TritonModelException = _ModelException
    module.get_input_tensor_by_name = lambda request, name: _Tensor(name, request.tensors[name])
    monkeypatch.setitem(sys.modules, "triton_python_backend_utils", module)
    return module


def _load(source: str, pb_utils: types.ModuleType) -> types.ModuleType:
    spec = importlib.util.spec_from_file_location(f"_faq_test_{source[:-3]}", PYTHON_MODELS_DIR / source)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _config_json(model_spec) -> str:
    from google.protobuf.json_format import MessageToJson

    return MessageToJson(build_config(model_spec, "cpu"), preserving_proto_field_name=True)


def _texts(*values: bytes) -> np.ndarray:
    return np.array([[v] for v in values], dtype=object)


@pytest.fixture()
def preprocess(pb_utils: types.ModuleType):
    model = _load("faq_preprocess.py", pb_utils).TritonPythonModel()
    model.initialize({"model_config": _config_json(PREPROCESS)})
    return model


def test_preprocess_cleans_with_faq_data_clean_text(preprocess) -> None:
    from faq.data import clean_text

    raw = "<p>How do I <b>REMOVE</b> an item?</p><pre><code>arr.x()</code></pre>"
    (response,) = preprocess.execute([_Request(TEXT=_texts(raw.encode()))])
    assert response.error is None
    assert response.outputs["CLEAN_TEXT"].tolist() == [[clean_text(raw).encode()]]


def test_preprocess_reads_the_limit_from_the_config(preprocess) -> None:
    assert preprocess.max_bytes == MAX_TEXT_BYTES


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
def postprocess(pb_utils: types.ModuleType, tmp_path: Path):
    table = {
        "faq_id": [11, 22, 33, 44, 55, 66],
        "question": ["q1", "q2", "q3 caf\u00e9", "q4", "q5", "q6"],
        "answer": ["a1", "a2", "a3", "a4", "a5", "a6"],
    }
    (tmp_path / "1").mkdir()
    (tmp_path / "1" / TABLE_FILE).write_text(json.dumps(table))
    model = _load("faq_postprocess.py", pb_utils).TritonPythonModel()
    model.initialize(
        {"model_config": _config_json(POSTPROCESS), "model_repository": str(tmp_path), "model_version": "1"}
    )
    return model


def test_postprocess_returns_top_k_sorted_with_text(postprocess) -> None:
    proba = np.array(
        [[0.05, 0.10, 0.50, 0.05, 0.20, 0.10], [0.9, 0.02, 0.02, 0.02, 0.02, 0.02]], dtype=np.float32
    )
    (response,) = postprocess.execute([_Request(PROBABILITIES=proba)])
    assert response.error is None
    out = response.outputs
    assert out["FAQ_ID"].shape == out["SCORE"].shape == out["FAQ_QUESTION"].shape == (2, TOP_K)
    assert out["FAQ_ID"][0].tolist() == [33, 55, 22, 66, 11]  # ties (0.10, 0.05): table order
    assert out["SCORE"].dtype == np.float32 and out["FAQ_ID"].dtype == np.int64
    assert np.all(np.diff(out["SCORE"], axis=1) <= 0)
    assert out["FAQ_QUESTION"][0, 0] == "q3 caf\u00e9".encode()
    assert out["FAQ_ANSWER"][0, 0] == b"a3"
    assert out["FAQ_ID"][1, 0] == 11


def test_postprocess_refuses_probabilities_that_do_not_fit_the_table(postprocess) -> None:
    (response,) = postprocess.execute([_Request(PROBABILITIES=np.ones((1, 4), np.float32))])
    assert response.error is not None and "disagree" in response.error.message


def test_postprocess_ranks_a_dynamic_batch_like_each_request_alone(postprocess) -> None:
    """The batch is ranked in one go; each request still gets exactly its own rows back."""
    rng = np.random.default_rng(7)
    requests = [
        _Request(PROBABILITIES=rng.random((1, 6), dtype=np.float32)),
        _Request(PROBABILITIES=rng.random((3, 6), dtype=np.float32)),
        _Request(PROBABILITIES=np.ones((1, 5), np.float32)),  # does not fit the table
        _Request(PROBABILITIES=rng.random((2, 6), dtype=np.float32)),
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


def test_onnx_runner_scores_bytes_like_scikit_learn(pb_utils: types.ModuleType, tmp_path: Path) -> None:
    """The CPU runner gets TYPE_STRING as ``bytes``; it must not score their ``str()`` repr."""
    import onnx

    from export.faq_onnx import to_onnx
    from faq.data import FaqDataset, load_dataset
    from faq.model import FaqModel
    from faq.specs import CLASSIFIER

    ds = load_dataset()
    keep = ds.originals["faq_id"].head(8)
    small = FaqDataset(
        ds.originals[ds.originals["faq_id"].isin(keep)],
        ds.duplicates[ds.duplicates["faq_id"].isin(keep)],
    )
    model = FaqModel.fit(small)
    (tmp_path / "1").mkdir()
    onnx.save(to_onnx(model.pipeline), tmp_path / "1" / "model.onnx")
    runner = _load("onnx_runner.py", pb_utils).TritonPythonModel()
    runner.initialize(
        {"model_config": _config_json(CLASSIFIER), "model_repository": str(tmp_path), "model_version": "1"}
    )
    texts = ["b remove an item from an array", "caf\u00e9 loop over an object's keys"]
    requests = [_Request(TEXT=_texts(t.encode())) for t in texts]
    responses = runner.execute(requests)
    served = np.vstack([r.outputs["PROBABILITIES"] for r in responses])
    np.testing.assert_allclose(served, model.predict_proba_clean(texts), atol=1e-4)
