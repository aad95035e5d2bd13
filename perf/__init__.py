"""Performance harness: perf_analyzer and locust against Triton, side by side with Azure ML's server.

``python -m perf.run_all`` (``make perf``) runs everything and writes ``perf/RESULTS.md``.
Raw CSV and logs go to the git-ignored ``perf/out/``; plots to ``perf/plots/``.
"""

from __future__ import annotations

from serving.paths import REPO_ROOT

PERF_DIR = REPO_ROOT / "perf"
OUT_DIR = PERF_DIR / "out"
PLOTS_DIR = PERF_DIR / "plots"
RESULTS_MD = PERF_DIR / "RESULTS.md"
