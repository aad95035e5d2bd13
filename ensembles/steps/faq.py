"""The FAQ ensemble's Python steps: question text in, top-K originals with their text out.

Cleaning is :func:`faq.text.clean_text`, the function the model was trained with, so the served
model sees text exactly as in training. Tensor names, ``TOP_K`` and the text limit come from
``faq.specs`` through the rendered config (names in spec order, the rest as parameters).
"""

from __future__ import annotations

import json

import numpy as np

from ensembles.runtime import Arrays, ConfigError, RequestError, Step, StepConfig
from faq.text import clean_text


def clean_request(texts: np.ndarray, max_bytes: int, name: str) -> np.ndarray:
    """Validate and clean one request's ``[n, 1]`` array of bytes; raise :class:`RequestError`.

    The length is checked before decoding, so 1 MB of text costs nothing; decoding is strict
    (no silent replacement characters); text that is empty after cleaning has nothing to match.
    """
    cleaned = []
    for row, raw in enumerate(texts.ravel().tolist()):  # dims [1]: element i is row i
        if isinstance(raw, str):  # defensive: the backend hands TYPE_STRING over as bytes
            raw = raw.encode("utf-8")
        if len(raw) > max_bytes:
            raise RequestError(f"{name}[{row}] is {len(raw)} bytes long; the limit is {max_bytes} bytes")
        try:
            text = raw.decode("utf-8", errors="strict")
        except UnicodeDecodeError as exc:
            raise RequestError(
                f"{name}[{row}] is not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start})"
            ) from None
        clean = clean_text(text)
        if not clean:
            raise RequestError(f"{name}[{row}] is empty after cleaning; send a question with some words")
        cleaned.append(clean.encode("utf-8"))
    return np.array(cleaned, dtype=object).reshape(texts.shape)


def top_k(probabilities: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the ``k`` highest scores per row, best first (ties: lower column first)."""
    return np.argsort(-probabilities, axis=1, kind="stable")[:, :k]


class FaqPreprocess(Step):
    """Question bytes -> cleaned text for the classifier; each bad question refused on its own."""

    def __init__(self, config: StepConfig, log: object = None) -> None:
        super().__init__(config, log)
        (self.text,), (self.clean,) = config.tensors(inputs=1, outputs=1)
        self.max_bytes = config.integer("MAX_TEXT_BYTES")

    def prepare(self, inputs: Arrays) -> Arrays:
        return {self.clean: clean_request(inputs[self.text], self.max_bytes, self.text)}


class FaqPostprocess(Step):
    """Probabilities -> top-K ids, scores, questions and answers, ranked over the whole batch;
    the in-scope probability (the last column) or a confident top match -> ``MATCHED`` (faq.scope).

    The FAQ table (``faq_id``, ``question``, ``answer`` in probability-column order, and the
    in-scope threshold) ships in the version folder, written by ``export.faq_onnx`` together with
    the ONNX model, so a version's threshold always goes with its scope model.
    """

    def __init__(self, config: StepConfig, log: object = None) -> None:
        super().__init__(config, log)
        (self.probabilities,), self.outputs = config.tensors(inputs=1, outputs=5)
        self.k = config.integer("TOP_K")
        path = config.file("TABLE_FILE")
        table = json.loads(path.read_text(encoding="utf-8"))
        self.faq_ids = np.asarray(table["faq_id"], dtype=np.int64)
        self.questions = np.array([q.encode("utf-8") for q in table["question"]], dtype=object)
        self.answers = np.array([a.encode("utf-8") for a in table["answer"]], dtype=object)
        # with a scope model, the classifier's last column is the in-scope probability
        self.scoped = "in_scope_threshold" in table
        self.threshold = float(table.get("in_scope_threshold", 0.0))
        self.confident = float(table.get("confident_score", 1.0))
        if len(self.faq_ids) < self.k:
            raise ConfigError(f"{path.name} has {len(self.faq_ids)} originals, fewer than TOP_K={self.k}")

    def prepare(self, inputs: Arrays) -> Arrays:
        probabilities = inputs[self.probabilities]
        if probabilities.ndim != 2 or probabilities.shape[1] != len(self.faq_ids) + self.scoped:
            raise RuntimeError(
                f"classifier gave {probabilities.shape[-1]} scores for {len(self.faq_ids)} originals"
                f"{' and the scope' if self.scoped else ''}: model and FAQ table disagree"
            )
        return inputs

    def compute(self, batch: Arrays) -> Arrays:
        columns = batch[self.probabilities]
        probabilities = columns[:, : len(self.faq_ids)]
        best = top_k(probabilities, self.k)
        scores = np.take_along_axis(probabilities, best, axis=1).astype(np.float32, copy=False)
        in_scope = columns[:, -1:] >= self.threshold if self.scoped else np.ones_like(scores[:, :1], bool)
        matched = in_scope | (scores[:, :1] >= self.confident)
        columns = (self.faq_ids[best], scores, self.questions[best], self.answers[best], matched)
        return dict(zip(self.outputs, columns, strict=True))
