"""ONNX (skl2onnx + ONNX Runtime) must score exactly like scikit-learn: within 1e-4, calibration
included (the served graph ends with it).

Tokenizer differences (RE2 vs Python regex, locale lower-casing, sublinear TF) show up here as
probability differences; the fix belongs in ``faq.model``'s settings, never in the tolerance.
"""

from __future__ import annotations

import json

import numpy as np
import onnxruntime as ort
import pytest

from export.faq_onnx import INPUT_NAME, OUTPUT_NAME, export, to_onnx
from faq.calibration import fit_calibration
from faq.data import clean_text, load_dataset, split_duplicates
from faq.model import FaqModel
from faq.specs import ARTIFACT_DIR, CLASSIFIER_FILE, TABLE_FILE

TOLERANCE = 1e-4

# Texts that stress the tokenizer: non-ASCII letters, digits and punctuation, JS names, tabs.
EDGE_CASES = [
    "why does 0.1 + 0.2 give 0.30000000000000004 in js?",
    "café naïve résumé: how do i sort strings with accents (localecompare)?",
    "日本語のテキストを javascript で分割する",
    "emoji 😀 in a string: length is 2?",
    "$(document).ready vs window.onload, _.debounce and __proto__",
    "x",
    "tab\tseparated\nand new lines",
    "<p>how do i <b>remove</b> an item from an array?</p>",
    "don't won't can't isn't",
    "a-b_c.d/e\\f|g",
]


@pytest.fixture(scope="module")
def split_model() -> tuple[FaqModel, list[str]]:
    ds = load_dataset()
    train, test = split_duplicates(ds)
    model = FaqModel.fit(ds, train)
    model.calibration = fit_calibration(ds, train)
    return model, list(test["text"])


def _session(model: FaqModel) -> ort.InferenceSession:
    return ort.InferenceSession(
        to_onnx(model.pipeline, model.calibration).SerializeToString(), providers=["CPUExecutionProvider"]
    )


def test_every_test_question_matches_sklearn(split_model: tuple[FaqModel, list[str]]) -> None:
    model, test_questions = split_model
    session = _session(model)
    cleaned = [clean_text(q) for q in [*test_questions, *EDGE_CASES]]
    onnx_proba = session.run([OUTPUT_NAME], {INPUT_NAME: np.array(cleaned, dtype=object)[:, None]})[0]
    sk_proba = model.predict_proba_clean(cleaned)
    assert onnx_proba.shape == sk_proba.shape == (len(cleaned), len(model.faq_ids))
    worst = np.abs(onnx_proba - sk_proba).max(axis=1)
    bad = [(cleaned[i], float(worst[i])) for i in np.flatnonzero(worst > TOLERANCE)]
    assert not bad, f"ONNX differs from scikit-learn by more than {TOLERANCE}: {bad[:5]}"
    # same ranking, not just close numbers; and the calibration does not change the ranking
    assert (onnx_proba.argmax(axis=1) == sk_proba.argmax(axis=1)).all()
    assert model.calibration is not None and model.calibration.temperature != 1.0
    raw = model.pipeline.predict_proba(cleaned)
    assert (raw.argmax(axis=1) == sk_proba.argmax(axis=1)).all()


def test_tfidf_features_match_token_by_token(split_model: tuple[FaqModel, list[str]]) -> None:
    """The vectorizer alone, so a tokenizer mismatch is caught even if the classifier hides it."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import StringTensorType
    from sklearn.feature_extraction.text import TfidfVectorizer

    model, test_questions = split_model
    vectorizer = model.pipeline.named_steps["tfidf"]
    onx = convert_sklearn(
        vectorizer,
        initial_types=[("TEXT", StringTensorType([None, 1]))],
        options={TfidfVectorizer: {"locale": "C"}},
        target_opset={"": 17, "ai.onnx.ml": 3},
    )
    session = ort.InferenceSession(onx.SerializeToString(), providers=["CPUExecutionProvider"])
    cleaned = [clean_text(q) for q in [*test_questions, *EDGE_CASES]]
    onnx_tfidf = session.run(None, {"TEXT": np.array(cleaned, dtype=object)[:, None]})[0]
    sk_tfidf = vectorizer.transform(cleaned).toarray()
    assert np.abs(onnx_tfidf - sk_tfidf).max() < 1e-6


def test_onnx_graph_has_triton_tensor_names(split_model: tuple[FaqModel, list[str]]) -> None:
    onx = to_onnx(split_model[0].pipeline)
    assert [i.name for i in onx.graph.input] == [INPUT_NAME]
    assert [o.name for o in onx.graph.output] == [OUTPUT_NAME]
    assert onx.ir_version <= 10  # readable by ONNX Runtime 1.19 in tritonserver:24.10


def test_export_writes_model_and_aligned_table(tmp_path) -> None:
    out = export(tmp_path)
    assert out == tmp_path / ARTIFACT_DIR
    table = json.loads((out / TABLE_FILE).read_text())
    session = ort.InferenceSession(str(out / CLASSIFIER_FILE), providers=["CPUExecutionProvider"])
    ds = load_dataset()
    cleaned = ds.originals.set_index("faq_id").loc[table["faq_id"]]
    questions = np.array(list(cleaned["question"]), dtype=object)[:, None]
    proba = session.run([OUTPUT_NAME], {INPUT_NAME: questions})[0][:, :-1]
    assert table["question"] == list(cleaned["question_text"])  # what users read: the title as written
    assert table["answer"] == list(cleaned["answer_text"])
    assert sorted(table["faq_id"]) == sorted(ds.originals["faq_id"])
    assert proba.shape == (len(table["faq_id"]), len(table["faq_id"]))
    # column i of the probabilities is row i of the table: each original finds itself
    assert (proba.argmax(axis=1) == np.arange(len(questions))).all()
    # the exported (served) model is the scikit-learn model trained on all the data
    served = FaqModel.fit(ds)
    served.calibration = fit_calibration(ds, ds.duplicates)
    assert list(served.faq_ids) == table["faq_id"]
    texts = [clean_text(t) for t in ds.duplicates["text"]]
    onnx_proba = session.run([OUTPUT_NAME], {INPUT_NAME: np.array(texts, dtype=object)[:, None]})[0]
    assert onnx_proba.shape[1] == len(table["faq_id"]) + 1  # the last column: in scope
    assert np.abs(onnx_proba[:, :-1] - served.predict_proba_clean(texts)).max() < TOLERANCE
