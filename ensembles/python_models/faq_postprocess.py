"""Triton Python model ``faq_postprocess``: probabilities -> top-K originals with their text.

The FAQ table (``faq_id``, ``question``, ``answer`` in probability-column order) ships in the
version folder next to this file, written by ``export.faq_onnx`` together with the ONNX model,
so the two always agree. ``TOP_K`` comes from the config (set once in ``faq.specs``).
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
        responses = []
        for request in requests:
            probabilities = pb_utils.get_input_tensor_by_name(request, "PROBABILITIES").as_numpy()
            if probabilities.shape[-1] != len(self.faq_ids):
                error = pb_utils.TritonError(
                    f"classifier gave {probabilities.shape[-1]} scores for "
                    f"{len(self.faq_ids)} originals: model and FAQ table disagree"
                )
                responses.append(pb_utils.InferenceResponse(error=error))
                continue
            best = top_k(probabilities, self.k)
            scores = np.take_along_axis(probabilities, best, axis=1).astype(np.float32)
            responses.append(
                pb_utils.InferenceResponse(
                    output_tensors=[
                        pb_utils.Tensor("FAQ_ID", self.faq_ids[best]),
                        pb_utils.Tensor("SCORE", scores),
                        pb_utils.Tensor("FAQ_QUESTION", self.questions[best]),
                        pb_utils.Tensor("FAQ_ANSWER", self.answers[best]),
                    ]
                )
            )
        return responses
