"""Azure ML scoring script for FAQ baseline (a): the original architecture's pairwise model.

TF-IDF of the question and of each original, side by side, scored by gradient-boosted trees
(:class:`faq.baseline.PairwiseBaseline`); one request builds a pair with every original.
Served by ``azmlinfsrv --entry_script perf/baseline/score_faq_pairwise.py``.

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

init, run = faq_scoring.entry_points("faq_pairwise")
