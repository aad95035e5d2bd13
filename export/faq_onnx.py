"""Train the FAQ matcher and export it to ONNX with skl2onnx, plus the FAQ table it serves.

Writes three files into ``<artifacts>/faq/<fingerprint>/`` (see :mod:`faq.specs`), which are
also what ``python -m faq.release`` writes into each new version of the served model:

* ``faq_classifier.onnx``: input ``TEXT`` (string ``[N, 1]``, already cleaned), output
  ``PROBABILITIES`` (float32 ``[N, n_originals]``); the names are the Triton tensor names, so
  the native ``onnxruntime`` backend needs no mapping;
* ``faq_table.json``: ``faq_id``, ``question`` and ``answer`` per probability column, loaded by
  ``faq_postprocess``;
* ``faq_provenance.json``: where it came from (data hash, code fingerprint, time), its accuracy on
  held-out duplicates (the same recipe trained without them), and a short hash of every text it
  was trained on, so that a later release compares models only on questions neither has seen.

The served model is trained on *all* duplicates (plus the originals' questions and answers);
``python -m faq.evaluate`` measures the same recipe trained on the train split only.
Deterministic (fixed seed) and takes a few seconds.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import numpy as np
import onnx
import pandas as pd
import typer
from onnx import numpy_helper
from skl2onnx import convert_sklearn
from skl2onnx.common.data_types import FloatTensorType, StringTensorType
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from faq.calibration import EDGE, FLOOR, Calibration, fit_calibration
from faq.data import FaqDataset, load_dataset, split_duplicates
from faq.model import FaqModel, training_data
from faq.scope import CONFIDENT, Scope, fit_scope, off_topic, user_questions
from faq.specs import (
    ARTIFACT_DIR,
    CLASSIFIER_FILE,
    PROBABILITIES,
    PROVENANCE_FILE,
    TABLE_FILE,
    TEXT,
    fingerprint,
)
from serving.paths import ARTIFACTS_DIR

log = logging.getLogger(__name__)

INPUT_NAME, OUTPUT_NAME = TEXT, PROBABILITIES  # the classifier's tensors, as the spec names them
SHIPPED = "shipped data set (faq/datasets/stackoverflow_js)"
OPSET = {"": 17, "ai.onnx.ml": 3}
# ONNX Runtime 1.19 in the tritonserver:24.10 container reads IR version 10 at most.
MAX_IR_VERSION = 10


def _convert(pipeline: Pipeline) -> onnx.ModelProto:
    return convert_sklearn(
        pipeline,
        initial_types=[(INPUT_NAME, StringTensorType([None, 1]))],
        options={TfidfVectorizer: {"locale": "C"}, LogisticRegression: {"zipmap": False}},
        target_opset=OPSET,
    )


def to_onnx(
    pipeline: Pipeline, calibration: Calibration | None = None, scope: Scope | None = None
) -> onnx.ModelProto:
    """Convert the fitted pipeline, then the calibration; keep only ``TEXT -> PROBABILITIES``:
    one probability per original and, when there is a scope model, the in-scope probability as
    one more, last column (one tensor through the ensemble; the post-processing splits it). The
    output's width is declared open: a fixed one that differs makes ONNX Runtime log a warning
    on every run, which cost ``faq_match`` an eighth of its throughput (docs/faq.md).

    ``locale="C"``: the converter's ``StringNormalizer`` otherwise asks for ``en_US.UTF-8``,
    which minimal machines and containers lack, and the session fails to load. The text is
    lower-cased by ``clean_text`` before the model, so the locale changes nothing else.
    """
    onx = _convert(pipeline)
    graph = onx.graph
    for node in graph.node:
        node.output[:] = ["raw_probabilities" if n == "probabilities" else n for n in node.output]
    del graph.output[:]  # [N, originals (+ 1)]: the width is the model's, not the config's
    graph.output.append(onnx.helper.make_tensor_value_info(OUTPUT_NAME, onnx.TensorProto.FLOAT, [None, None]))
    matcher = (
        _append_calibration(graph, "raw_probabilities", calibration) if calibration else "raw_probabilities"
    )
    vocabulary = pipeline.named_steps["tfidf"].vocabulary_
    parts = [matcher, _append_scope(graph, scope, vocabulary)] if scope is not None else [matcher]
    graph.node.append(onnx.helper.make_node("Concat", parts, [OUTPUT_NAME], axis=1))
    _prune(graph)
    onx.ir_version = min(onx.ir_version, MAX_IR_VERSION)
    onx.producer_name = "triton-scoring-stack export.faq_onnx"
    onx.doc_string = "FAQ matcher: cleaned question text -> calibrated probability per original (+ in scope)"
    onnx.checker.check_model(onx)
    return onx


def _append_calibration(graph: onnx.GraphProto, raw: str, c: Calibration) -> str:
    """``faq.calibration.Calibration.apply`` as ONNX nodes after ``raw``; returns their output."""
    constants = {"floor": FLOOR, "inv_t": 1 / c.temperature, "low": EDGE, "high": 1 - EDGE, "one": 1.0}
    constants |= {"slope": c.slope, "intercept": c.intercept}
    for name, value in constants.items():
        graph.initializer.append(numpy_helper.from_array(np.array(value, dtype=np.float32), f"cal_{name}"))
    make = onnx.helper.make_node
    graph.node.extend(
        [
            make("Max", [raw, "cal_floor"], ["cal_p"]),
            make("Log", ["cal_p"], ["cal_log_p"]),
            make("Mul", ["cal_log_p", "cal_inv_t"], ["cal_z"]),
            make("Softmax", ["cal_z"], ["cal_scaled"], axis=1),
            make("Clip", ["cal_scaled", "cal_low", "cal_high"], ["cal_s"]),
            make("Sub", ["cal_one", "cal_s"], ["cal_rest"]),
            make("Div", ["cal_s", "cal_rest"], ["cal_odds"]),
            make("Log", ["cal_odds"], ["cal_logit"]),
            make("Mul", ["cal_logit", "cal_slope"], ["cal_a"]),
            make("Add", ["cal_a", "cal_intercept"], ["cal_b"]),
            make("Sigmoid", ["cal_b"], ["cal_out"]),
        ]
    )
    return "cal_out"


def _append_scope(graph: onnx.GraphProto, scope: Scope, vocabulary: dict) -> str:
    """``faq.scope.Scope.in_scope`` on the matcher's own TF-IDF row (the scope's vectorizer is the
    same, checked here), so the text is tokenized once; returns the ``[N, 1]`` output."""
    if scope.pipeline.named_steps["tfidf"].vocabulary_ != vocabulary:
        raise ValueError("the scope model's vectorizer differs from the matcher's")
    (matcher,) = [n for n in graph.node if n.op_type == "LinearClassifier"]
    features = matcher.input[0]
    head = convert_sklearn(
        scope.pipeline.named_steps["clf"],
        initial_types=[("features", FloatTensorType([None, len(vocabulary)]))],
        options={LogisticRegression: {"zipmap": False}},
        target_opset=OPSET,
    )
    head = onnx.compose.add_prefix(head, "scope_")
    for node in head.graph.node:
        node.input[:] = [features if n == "scope_features" else n for n in node.input]
    graph.node.extend(head.graph.node)
    graph.initializer.extend(head.graph.initializer)
    graph.initializer.extend(
        [
            numpy_helper.from_array(np.array([1], dtype=np.int64), "scope_column"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "scope_axes"),
            numpy_helper.from_array(np.array(0.0, dtype=np.float32), "scope_zero"),
        ]
    )
    make = onnx.helper.make_node
    graph.node.extend(
        [
            make("Gather", ["scope_probabilities", "scope_column"], ["scope_p"], axis=1),
            make("ReduceSum", [features, "scope_axes"], ["scope_mass"], keepdims=1),
            make("Greater", ["scope_mass", "scope_zero"], ["scope_has_words"]),
            make("Cast", ["scope_has_words"], ["scope_known"], to=onnx.TensorProto.FLOAT),
            make("Mul", ["scope_p", "scope_known"], ["scope_in"]),
        ]
    )
    return "scope_in"


def _prune(graph: onnx.GraphProto) -> None:
    """Drop nodes that no graph output depends on (the converter's ``label`` branch)."""
    needed = {o.name for o in graph.output}
    keep = []
    for node in reversed(graph.node):
        if any(n in needed for n in node.output):
            keep.append(node)
            needed.update(node.input)
    del graph.node[:]
    graph.node.extend(reversed(keep))
    used = {n for node in graph.node for n in node.input}
    initializers = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(initializers)


def faq_table(model: FaqModel) -> dict[str, list]:
    """The originals in probability-column order, as ``faq_postprocess`` loads them: the question
    and answer as a person reads them (the model's cleaned texts where a data set has no other)."""
    originals = model.originals
    question = originals["question_text"] if "question_text" in originals else originals["question"]
    answer = originals["answer_text"] if "answer_text" in originals else originals["answer"]
    return {
        "faq_id": [int(i) for i in originals["faq_id"]],
        "question": [str(q) for q in question],
        "answer": [str(a) for a in answer],
    }


def text_hash(text: str) -> str:
    """A short, stable name for a training text (provenance lists them; collisions are harmless)."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=8).hexdigest()


MIN_HELD_OUT = 10  # duplicates, below which there is nothing to measure a model on


def held_out_split(ds: FaqDataset) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """(train, test) duplicates: stratified by original where each has two or more, else a plain
    seeded 80/20 split; None with fewer than :data:`MIN_HELD_OUT` duplicates."""
    if len(ds.duplicates) < MIN_HELD_OUT:
        return None
    try:
        return split_duplicates(ds)
    except ValueError:  # some originals have a single duplicate (a user's own FAQ)
        test = ds.duplicates.sample(frac=0.2, random_state=42)
        return ds.duplicates.drop(test.index), test


def held_out_accuracy(ds: FaqDataset) -> dict[str, float] | None:
    """Acc@1 and Acc@3 of the recipe on held-out duplicates: trained without them."""
    from faq.evaluate import accuracy

    if (split := held_out_split(ds)) is None:
        return None
    train, test = split
    model = FaqModel.fit(ds, train)
    result = accuracy(model.predict_proba_clean(list(test["text"])), model.faq_ids, test["faq_id"])
    return {"acc1": result.acc1, "acc3": result.acc3, "n": result.n}


def served_model(
    ds: FaqDataset, off_texts: list[str] | None = None, users: list[str] | None = None
) -> FaqModel:
    """The matcher as it is served: trained on all of ``ds``, calibrated, with its scope model."""
    model = FaqModel.fit(ds)
    model.calibration = fit_calibration(ds, ds.duplicates)
    off = off_topic() if off_texts is None else off_texts
    model.scope = fit_scope(ds, ds.duplicates, off, users or [])
    return model


def write_model(
    ds: FaqDataset,
    out_dir: Path,
    source: str,
    off_texts: list[str] | None = None,
    users: list[str] | None = None,
) -> dict:
    """Train on all of ``ds`` (and the off-topic questions, the project's by default; ``users``:
    people's questions for choosing the scope threshold) and write the three files into
    ``out_dir``; returns the provenance."""
    model = served_model(ds, off_texts, users)
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / f"{CLASSIFIER_FILE}.part"
    onnx.save(to_onnx(model.pipeline, model.calibration, model.scope), tmp)
    tmp.replace(out_dir / CLASSIFIER_FILE)
    scope = {"in_scope_threshold": model.scope.threshold, "confident_score": CONFIDENT}
    table = {"fingerprint": fingerprint(), **scope, **faq_table(model)}
    (out_dir / TABLE_FILE).write_text(json.dumps(table, ensure_ascii=False, indent=1))
    provenance = {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "source": source,
        "data_sha256": data_hash(ds),
        "code": fingerprint(),
        "originals": len(ds.originals),
        "duplicates": len(ds.duplicates),
        "held_out": held_out_accuracy(ds),
        "calibration": None if model.calibration is None else vars(model.calibration),
        "in_scope_threshold": model.scope.threshold,
        "trained_on": sorted({text_hash(t) for t in training_data(ds, ds.duplicates)[0]}),
    }
    (out_dir / PROVENANCE_FILE).write_text(json.dumps(provenance, indent=1))
    return provenance


def data_hash(ds: FaqDataset) -> str:
    digest = hashlib.sha256()
    for frame in (ds.originals, ds.duplicates):
        digest.update(frame.to_csv(index=False).encode("utf-8"))
    return digest.hexdigest()


def export(artifacts_dir: Path = ARTIFACTS_DIR) -> Path:
    """Train on the shipped data set and write the model's files; returns the folder."""
    out_dir = Path(artifacts_dir) / ARTIFACT_DIR
    ds = load_dataset()
    write_model(ds, out_dir, SHIPPED, users=user_questions())
    # earlier fingerprints are stale: the data or the code has changed since
    for sibling in out_dir.parent.iterdir():
        if sibling.is_dir() and sibling != out_dir:
            shutil.rmtree(sibling, ignore_errors=True)
    log.info("wrote %s (%d originals, %d duplicates)", out_dir, len(ds.originals), len(ds.duplicates))
    return out_dir


def main(
    artifacts_dir: Annotated[Path, typer.Option(help="artifacts folder")] = ARTIFACTS_DIR,
) -> None:
    """Export the FAQ matcher (normally `make build` does this when needed)."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    typer.echo(export(artifacts_dir))


if __name__ == "__main__":
    typer.run(main)
