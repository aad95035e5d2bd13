"""Azure ML scoring script for FAQ baseline (a): the original architecture's pairwise model.

TF-IDF of the question and of each original, side by side, scored by gradient-boosted trees
(:class:`faq.baseline.PairwiseBaseline`); one request builds a pair with every original.
Served by ``azmlinfsrv --entry_script perf/baseline/score_faq_pairwise.py``.

``init()`` loads the model from ``$AZUREML_MODEL_DIR`` (written by :mod:`perf.baseline.models`);
``run()`` takes ``{"question": "..."}`` and returns the top originals.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

# azmlinfsrv loads this file by path: make the project importable (the code is imported, not copied).
_REPO_ROOT = Path(__file__).resolve().parents[2]
if str(_REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(_REPO_ROOT))

from azureml_inference_server_http.api.aml_response import AMLResponse  # noqa: E402

from perf.baseline import faq_scoring, models  # noqa: E402

KIND = "faq_pairwise"
payload: dict[str, Any] | None = None


def init() -> None:
    global payload
    model_dir = os.environ.get("AZUREML_MODEL_DIR")
    if not model_dir:
        raise RuntimeError("AZUREML_MODEL_DIR is not set (azmlinfsrv --model_dir)")
    loaded = models.load(Path(model_dir))
    if loaded.get("kind") != KIND:
        raise RuntimeError(f"{model_dir} holds {loaded.get('kind')!r}, not {KIND!r}")
    payload = loaded


def run(raw_data: str) -> dict[str, Any] | AMLResponse:
    if payload is None:
        raise RuntimeError("init() has not run")
    try:
        question = faq_scoring.parse_question(raw_data)
    except faq_scoring.BadRequest as exc:
        return AMLResponse({"error": str(exc)}, 400, json_str=True)
    return faq_scoring.answer(payload, question)
