"""Benchmarks (``perf.run``, ``perf.tune``, ``perf.soak``, ``perf.rollout``, ``perf.batch.bench``)
and the baselines they compare against (``perf.baseline``). Records: ``perf/results/<date>/``
with a hand-written note; summary tables: ``perf/RESULTS.md``; scratch: the git-ignored
``perf/out/``.
"""

from __future__ import annotations

from pathlib import Path

from serving.paths import REPO_ROOT

PERF_DIR = REPO_ROOT / "perf"
OUT_DIR = PERF_DIR / "out"
RESULTS_DIR = PERF_DIR / "results"
RESULTS_MD = PERF_DIR / "RESULTS.md"


def records_folder(out: Path | None, name: str) -> Path:
    """``out``, or ``perf/results/<UTC date>/<name>``: made, and absolute."""
    from datetime import UTC, datetime

    folder = (out or RESULTS_DIR / datetime.now(UTC).strftime("%Y-%m-%d") / name).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def replace_section(document: str, heading: str, section: str) -> str:
    """``document`` with the section under ``heading`` (up to the next ``## ``) replaced, or appended."""
    lines = document.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == heading), None)
    if start is None:
        return (document.rstrip() or "# Performance results") + "\n\n" + section
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    after = "".join(lines[end:])
    return "".join(lines[:start]) + section + ("\n" + after if after else "")
