"""What both FAQ scoring scripts do per request: parse, score every original, answer top-k.

Shared so that (a) and (b) differ only in the model they load, which is the comparison.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from perf.baseline import FAQ_FIELD, TOP_K


class BadRequest(ValueError):
    """The body is not ``{"question": "<non-empty text>"}``."""


def parse_question(raw_data: str | bytes) -> str:
    try:
        body = json.loads(raw_data)
    except (TypeError, ValueError) as exc:
        raise BadRequest(f"body is not JSON: {exc}") from None
    question = body.get(FAQ_FIELD) if isinstance(body, dict) else None
    if not isinstance(question, str) or not question.strip():
        raise BadRequest(f'expected {{"{FAQ_FIELD}": "<question text>"}}')
    return question


def answer(payload: dict[str, Any], question: str, k: int = TOP_K) -> dict[str, list[Any]]:
    """Top-``k`` originals for ``question``: ids, scores, original questions and answers."""
    model = payload["model"]
    scores = np.asarray(model.predict_proba([question]))[0]
    faq_ids = np.asarray(model.faq_ids)
    order = np.argsort(-scores, kind="stable")[:k]
    originals = payload["originals"].loc[faq_ids[order]]
    return {
        "faq_id": [int(i) for i in faq_ids[order]],
        "score": [float(s) for s in scores[order]],
        "question": [str(q) for q in originals["question"]],
        "answer": [str(a) for a in originals["answer"]],
    }


def entry_points() -> tuple[Callable[[], None], Callable[[str], Any]]:
    """The ``init()``/``run()`` pair of the FAQ scoring script: (a) and (b) differ only in the
    model their folder holds, which is the comparison."""
    from azureml_inference_server_http.api.aml_response import AMLResponse

    from perf.baseline import models

    state: dict[str, Any] = {}

    def init() -> None:
        model_dir = os.environ.get("AZUREML_MODEL_DIR")
        if not model_dir:
            raise RuntimeError("AZUREML_MODEL_DIR is not set (azmlinfsrv --model_dir)")
        loaded = models.load(Path(model_dir))
        if loaded.get("kind") not in models.KINDS:
            raise RuntimeError(f"{model_dir} holds {loaded.get('kind')!r}, not one of {models.KINDS}")
        state["payload"] = loaded

    def run(raw_data: str) -> dict[str, Any] | AMLResponse:
        if "payload" not in state:
            raise RuntimeError("init() has not run")
        try:
            question = parse_question(raw_data)
        except BadRequest as exc:
            return AMLResponse({"error": str(exc)}, 400, json_str=True)
        return answer(state["payload"], question)

    return init, run
