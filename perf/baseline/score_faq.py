"""Azure ML scoring script for the FAQ baselines: ``init()`` loads whichever model the model
folder holds, (a) the original's pairwise model or (b) our pipeline in scikit-learn
(:mod:`perf.baseline.models` writes them); ``run()`` takes ``{"question": "..."}``."""

from __future__ import annotations

import sys
from pathlib import Path

# azmlinfsrv loads this file by path: make the project importable (the code is imported, not copied).
_REPO_ROOT = Path(__file__).resolve().parents[2]
if str(_REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(_REPO_ROOT))

from perf.baseline import faq_scoring  # noqa: E402

init, run = faq_scoring.entry_points()
