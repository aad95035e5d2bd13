"""A short rollout benchmark: locust's own history records a release and its rollback under load,
and the summary judges them (no failed request; the p99 ratio is computed from the history)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from serving.paths import REPO_ROOT


def test_a_short_rollout_under_load_keeps_its_records(tmp_path: Path) -> None:
    out = tmp_path / "rollout"
    command = [sys.executable, "-m", "perf.rollout", "--seconds", "45", "--users", "4", "--out", str(out)]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    summary = (out / "summary.md").read_text()
    assert "**failed 0**" in summary, done.stdout[-3000:] + done.stderr[-3000:]
    switches = json.loads((out / "switches.json").read_text())
    assert len(switches) == 2 and all(s["end"] > s["begin"] for s in switches)
    assert (out / "locust_stats_history.csv").stat().st_size > 0
    ratio = float(re.search(r"\*\*([0-9.]+)x\*\*", summary).group(1))
    assert ratio > 0 and done.returncode == (0 if ratio <= 2 else 1)
