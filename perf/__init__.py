"""Benchmarks (``perf.run``, ``perf.tune``, ``perf.batch.bench``) and the baselines they compare
against (``perf.baseline``). Records: ``perf/results/<date>/`` with a hand-written note; summary
tables: ``perf/RESULTS.md``; scratch: the git-ignored ``perf/out/``.
"""

from __future__ import annotations

from serving.paths import REPO_ROOT

PERF_DIR = REPO_ROOT / "perf"
OUT_DIR = PERF_DIR / "out"
RESULTS_DIR = PERF_DIR / "results"
RESULTS_MD = PERF_DIR / "RESULTS.md"


def replace_section(document: str, heading: str, section: str) -> str:
    """``document`` with the section under ``heading`` (up to the next ``## ``) replaced, or appended."""
    lines = document.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == heading), None)
    if start is None:
        return (document.rstrip() or "# Performance results") + "\n\n" + section
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    after = "".join(lines[end:])
    return "".join(lines[:start]) + section + ("\n" + after if after else "")
