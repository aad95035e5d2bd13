"""Benchmarks (``perf.run``, ``perf.tune``, ``perf.soak``, ``perf.rollout``, ``perf.batch.bench``)
and the baselines they compare against (``perf.baseline``). Records: ``perf/results/<date>/``
with a hand-written note; summary tables: ``perf/RESULTS.md``; scratch: the git-ignored
``perf/out/``.
"""

from __future__ import annotations

import sys
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


def command() -> str:
    """How this benchmark was started: ``python -m perf.<module>`` and its arguments."""
    script = Path(sys.argv[0]).resolve()
    module = script.relative_to(REPO_ROOT).with_suffix("") if script.is_relative_to(REPO_ROOT) else script
    return " ".join(["python -m " + str(module).replace("/", "."), *sys.argv[1:]])


def publish(folder: Path, heading: str, body: str) -> str:
    """A run's generated summary (heading, when, where and how it ran, then ``body``), written
    to ``summary.md`` in its records folder and, for records under perf/results/, as its section
    of RESULTS.md. Returns the text."""
    from datetime import UTC, datetime

    from faq.evaluate import machine

    where = folder.relative_to(REPO_ROOT) if folder.is_relative_to(REPO_ROOT) else folder
    when = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}"
    text = f"{heading}\n\nRun of {when}: `{command()}`; records in `{where}/`.\n\n{body}"
    (folder / "summary.md").write_text(text)
    if folder.is_relative_to(RESULTS_DIR):
        RESULTS_MD.write_text(replace_section(RESULTS_MD.read_text(), heading, text))
    return text
