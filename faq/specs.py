"""The FAQ models as Triton sees them: one ensemble, ``faq_match``, and its three steps.

::

    TEXT ──> faq_preprocess ──CLEAN_TEXT──> faq_classifier ──PROBABILITIES──> faq_postprocess
             (Python: UTF-8,               (ONNX: TF-IDF +    (one per original,  (Python: top-K,
              clean_text, limits)           logistic regression, then in scope)  FAQ text lookup,
                                            calibration; scope model)            the thresholds)
                                        ──> FAQ_ID, SCORE, FAQ_QUESTION, FAQ_ANSWER, MATCHED

``TOP_K`` and ``MAX_TEXT_BYTES`` are set here and only here: they reach the Python models as
config parameters and shape the output dims. Batching choices are explained in docs/faq.md.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from serving.modelspec import (
    DynamicBatching,
    EnsembleStep,
    Instances,
    ModelSpec,
    OrtSettings,
    TensorSpec,
)

TOP_K = 5
"""How many matches ``faq_match`` returns (sorted by score)."""

MAX_TEXT_BYTES = 64 * 1024
"""Longest accepted question, in UTF-8 bytes before cleaning; longer ones get INVALID_ARG."""

MAX_BATCH_SIZE = 64
"""Largest batch any FAQ model takes (a client's request or a dynamic batch)."""

QUEUE_DELAY_US = 200
"""How long the dynamic batcher may hold a request to gather others. 200 µs per step: under load
the steps run fewer, larger batches (each ``execute`` call of a Python step has a fixed IPC
cost), +13% requests/s at 32 users and a lower p99; a lone request pays about 0.8 ms more
(docs/faq.md, "Batching and instances")."""

# Tensor names, used by the steps, the clients and the load tests.
TEXT = "TEXT"
CLEAN_TEXT = "CLEAN_TEXT"
PROBABILITIES = "PROBABILITIES"  # one per original, then the in-scope probability (faq.scope)
FAQ_ID, SCORE, QUESTION, ANSWER = "FAQ_ID", "SCORE", "FAQ_QUESTION", "FAQ_ANSWER"
MATCHED = "MATCHED"
OUTPUTS = (FAQ_ID, SCORE, QUESTION, ANSWER, MATCHED)
"""What ``faq_match`` returns, per question: four ``[TOP_K]``, best first (``SCORE`` the
probability that the match is right), and ``MATCHED`` ``[1]``, whether the FAQ answers the
question at all (faq.scope); when it is false the matches are only suggestions."""
MODEL_NAME = "faq_match"

CLASSIFIER_FILE = "faq_classifier.onnx"
TABLE_FILE = "faq_table.json"
PROVENANCE_FILE = "faq_provenance.json"

_ROOT = Path(__file__).resolve().parent.parent
_FINGERPRINTED = (
    _ROOT / "faq" / "data.py",
    _ROOT / "faq" / "model.py",
    _ROOT / "export" / "faq_onnx.py",
)


def fingerprint() -> str:
    """A short hash of the data set and of the code that trains and converts the model.

    The artifacts live in a folder named after it, so ``make build`` re-exports by itself when
    the shipped data or the model settings change (the build only exports missing artifacts).
    """
    import faq

    digest = hashlib.sha256()  # every data file of the set: no import of faq.data (pandas) here
    for path in (*sorted(faq.DATASET_DIR.glob("*.tsv.gz")), *_FINGERPRINTED):
        digest.update(path.name.encode())
        digest.update(path.read_bytes() if path.is_file() else b"<missing>")
    return digest.hexdigest()[:12]


ARTIFACT_DIR = f"faq/{fingerprint()}"
"""Folder of the FAQ artifacts, relative to the build's artifacts folder."""

EXPORTER = "export.faq_onnx:export"

_text = TensorSpec(TEXT, "TYPE_STRING", (1,))
# A bounded queue sheds overload (503) instead of letting every latency grow: 256 waiting
# requests are about 65 ms of work at the measured 3,900 req/s, and none waits more than 1 s.
_batching = DynamicBatching(max_queue_delay_us=QUEUE_DELAY_US, max_queue_size=256, queue_timeout_us=1_000_000)

PREPROCESS = ModelSpec(
    name="faq_preprocess",
    kind="python",
    description="UTF-8 decode, faq.data.clean_text, length limit; one error per bad request",
    inputs=(_text,),
    outputs=(TensorSpec(CLEAN_TEXT, "TYPE_STRING", (1,)),),
    max_batch_size=MAX_BATCH_SIZE,
    dynamic_batching=_batching,
    instances=Instances(cpu=1, gpu=2),
    python_step="ensembles.steps.faq:FaqPreprocess",
    parameters={"MAX_TEXT_BYTES": str(MAX_TEXT_BYTES)},
)

CLASSIFIER = ModelSpec(
    name="faq_classifier",
    kind="onnx",
    description="TF-IDF + logistic regression, calibrated (skl2onnx): a probability per original "
    "question, then the probability that the FAQ covers the question at all",
    inputs=(TensorSpec(TEXT, "TYPE_STRING", (1,)),),
    outputs=(TensorSpec(PROBABILITIES, "TYPE_FP32", (-1,)),),
    max_batch_size=MAX_BATCH_SIZE,
    dynamic_batching=_batching,
    instances=Instances(cpu=1, gpu=1),
    artifact=f"{ARTIFACT_DIR}/{CLASSIFIER_FILE}",
    exporter=EXPORTER,
    # One thread per run: the work per batch is a sparse row times a small matrix, and the
    # other steps need the second core of a 2-core machine.
    ort=OrtSettings(intra_op_threads=1, inter_op_threads=1),
    # TensorRT cannot run string tokenization: the GPU target keeps plain ONNX Runtime.
    gpu_tensorrt_fp16=False,
)

POSTPROCESS = ModelSpec(
    name="faq_postprocess",
    kind="python",
    description="top-K originals by probability, with their question and answer text; MATCHED",
    inputs=(TensorSpec(PROBABILITIES, "TYPE_FP32", (-1,)),),
    outputs=(
        TensorSpec(FAQ_ID, "TYPE_INT64", (TOP_K,)),
        TensorSpec(SCORE, "TYPE_FP32", (TOP_K,)),
        TensorSpec(QUESTION, "TYPE_STRING", (TOP_K,)),
        TensorSpec(ANSWER, "TYPE_STRING", (TOP_K,)),
        TensorSpec(MATCHED, "TYPE_BOOL", (1,)),
    ),
    max_batch_size=MAX_BATCH_SIZE,
    dynamic_batching=_batching,
    instances=Instances(cpu=1, gpu=2),
    python_step="ensembles.steps.faq:FaqPostprocess",
    extra_files={
        TABLE_FILE: f"{ARTIFACT_DIR}/{TABLE_FILE}",
        PROVENANCE_FILE: f"{ARTIFACT_DIR}/{PROVENANCE_FILE}",
    },
    exporter=EXPORTER,
    parameters={"TOP_K": str(TOP_K), "TABLE_FILE": TABLE_FILE},
)

MATCH = ModelSpec(
    name=MODEL_NAME,
    kind="ensemble",
    description="FAQ matching: a question in, the top-K original questions and answers out",
    inputs=(_text,),
    outputs=POSTPROCESS.outputs,
    max_batch_size=MAX_BATCH_SIZE,
    steps=(
        EnsembleStep("faq_preprocess", {TEXT: TEXT}, {CLEAN_TEXT: "clean_text"}),
        EnsembleStep("faq_classifier", {TEXT: "clean_text"}, {PROBABILITIES: "probabilities"}),
        EnsembleStep("faq_postprocess", {PROBABILITIES: "probabilities"}, {name: name for name in OUTPUTS}),
    ),
)

MODELS: list[ModelSpec] = [PREPROCESS, CLASSIFIER, POSTPROCESS, MATCH]
