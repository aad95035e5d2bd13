"""Azure ML scoring script for the FAQ baselines: ``init()`` loads whichever model the model
folder holds, (a) the original's pairwise model or (b) our pipeline in scikit-learn
(:mod:`perf.baseline.models` writes them), so that the two differ only in the model, which is
the comparison; ``run()`` takes ``{"question": "..."}`` and answers the top-k originals."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

# azmlinfsrv loads this file by path: make the project importable (the code is imported, not copied).
_REPO_ROOT = Path(__file__).resolve().parents[2]
if str(_REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(_REPO_ROOT))

import numpy as np  # noqa: E402
from azureml_inference_server_http.api.aml_response import AMLResponse  # noqa: E402

from faq.specs import TOP_K  # noqa: E402
from perf.baseline import FAQ_FIELD, models  # noqa: E402

payload: dict[str, Any] = {}


def init() -> None:
    model_dir = os.environ.get("AZUREML_MODEL_DIR")
    if not model_dir:
        raise RuntimeError("AZUREML_MODEL_DIR is not set (azmlinfsrv --model_dir)")
    loaded = models.load(Path(model_dir))
    if loaded.get("kind") not in models.KINDS:
        raise RuntimeError(f"{model_dir} holds {loaded.get('kind')!r}, not one of {models.KINDS}")
    payload.update(loaded)


def run(raw_data: str) -> dict[str, list[Any]] | AMLResponse:
    if not payload:
        raise RuntimeError("init() has not run")
    try:
        body = json.loads(raw_data)
    except (TypeError, ValueError) as exc:
        return AMLResponse({"error": f"body is not JSON: {exc}"}, 400, json_str=True)
    question = body.get(FAQ_FIELD) if isinstance(body, dict) else None
    if not isinstance(question, str) or not question.strip():
        return AMLResponse({"error": f'expected {{"{FAQ_FIELD}": "<question text>"}}'}, 400, json_str=True)
    scores = np.asarray(payload["model"].predict_proba([question]))[0]
    order = np.argsort(-scores, kind="stable")[:TOP_K]
    ids = np.asarray(payload["model"].faq_ids)[order]
    originals = payload["originals"].loc[ids]
    return {
        "faq_id": [int(i) for i in ids],
        "score": [float(s) for s in scores[order]],
        "question": [str(q) for q in originals["question"]],
        "answer": [str(a) for a in originals["answer"]],
    }
