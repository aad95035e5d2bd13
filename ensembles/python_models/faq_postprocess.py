"""Triton Python model ``faq_postprocess``: probabilities -> top-K originals with their text.

The FAQ table (``faq_id``, ``question``, ``answer`` in probability-column order) ships in the
version folder next to this file, written by ``export.faq_onnx`` together with the ONNX model,
so the two always agree. ``TOP_K`` comes from the config (set once in ``faq.specs``).

The ranking and the table lookups run once over the whole dynamic batch, not once per request:
in a Python step the per-request cost is what limits throughput (docs/faq.md, "Where the time
goes"), so only the response objects are built per request.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils


def top_k(probabilities: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the ``k`` highest scores per row, best first (ties: lower column first)."""
    return np.argsort(-probabilities, axis=1, kind="stable")[:, :k]


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        self.k = int(params["TOP_K"])
        path = Path(args["model_repository"]) / args["model_version"] / params["TABLE_FILE"]
        table = json.loads(path.read_text(encoding="utf-8"))
        self.faq_ids = np.asarray(table["faq_id"], dtype=np.int64)
        self.questions = np.array([q.encode("utf-8") for q in table["question"]], dtype=object)
        self.answers = np.array([a.encode("utf-8") for a in table["answer"]], dtype=object)
        if len(self.faq_ids) < self.k:
            raise pb_utils.TritonModelException(
                f"{path.name} has {len(self.faq_ids)} originals, fewer than TOP_K={self.k}"
            )

    def execute(self, requests: list) -> list:
        inputs = [pb_utils.get_input_tensor_by_name(r, "PROBABILITIES").as_numpy() for r in requests]
        responses: list = [None] * len(requests)
        ranked = []  # indices of the requests whose scores fit the table
        for index, probabilities in enumerate(inputs):
            if probabilities.ndim == 2 and probabilities.shape[1] == len(self.faq_ids):
                ranked.append(index)
                continue
            error = pb_utils.TritonError(
                f"classifier gave {probabilities.shape[-1]} scores for "
                f"{len(self.faq_ids)} originals: model and FAQ table disagree"
            )
            responses[index] = pb_utils.InferenceResponse(error=error)
        if not ranked:
            return responses
        merged = np.concatenate([inputs[i] for i in ranked])  # a copy, never a view of shared memory
        best = top_k(merged, self.k)
        scores = np.take_along_axis(merged, best, axis=1).astype(np.float32, copy=False)
        columns = (self.faq_ids[best], scores, self.questions[best], self.answers[best])
        start = 0
        for index in ranked:
            rows = slice(start, start + inputs[index].shape[0])
            start = rows.stop
            faq_id, score, question, answer = (c[rows] for c in columns)
            responses[index] = pb_utils.InferenceResponse(
                output_tensors=[
                    pb_utils.Tensor("FAQ_ID", faq_id),
                    pb_utils.Tensor("SCORE", score),
                    pb_utils.Tensor("FAQ_QUESTION", question),
                    pb_utils.Tensor("FAQ_ANSWER", answer),
                ]
            )
        return responses
