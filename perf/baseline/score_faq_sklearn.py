"""Azure ML scoring script for FAQ baseline (b): this project's FAQ pipeline in scikit-learn.

TF-IDF + logistic regression (:class:`faq.model.FaqModel`), the same model as Triton's
``faq_match`` without ONNX and Triton, served the way the original served its model.
Served by ``azmlinfsrv --entry_script perf/baseline/score_faq_sklearn.py``.

``init()`` loads the model from ``$AZUREML_MODEL_DIR`` (written by :mod:`perf.baseline.models`);
``run()`` takes ``{"question": "..."}`` and returns the top originals.
"""

from __future__ import annotations

import sys
from pathlib import Path

# azmlinfsrv loads this file by path: make the project importable (the code is imported, not copied).
_REPO_ROOT = Path(__file__).resolve().parents[2]
if str(_REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(_REPO_ROOT))

from perf.baseline import faq_scoring  # noqa: E402

init, run = faq_scoring.entry_points("faq_sklearn")
