"""A short soak: the served stack under steady load while a stub is stalled, a stub killed and
the server killed; nothing fails after retries, each fault heals, the records are written."""

from __future__ import annotations

import csv
import re
import subprocess
import sys
from pathlib import Path

from serving.paths import REPO_ROOT


def test_a_short_soak_recovers_every_fault_and_keeps_its_records(tmp_path: Path) -> None:
    out = tmp_path / "soak"
    command = [
        sys.executable,
        "-m",
        "perf.soak",
        "--minutes",
        "1.5",
        "--fault-every",
        "20",
        "--out",
        str(out),
    ]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    faults = list(csv.DictReader((out / "faults.csv").open()))
    assert [f["fault"] for f in faults] == ["stall", "kill_stub", "kill_server"]
    assert all(float(f["recovered_s"]) < 60 for f in faults)
    requests = list(csv.DictReader((out / "requests.csv").open()))
    assert sum(int(r["sent"]) for r in requests) > 1000
    assert sum(int(r["failed_after_retries"]) for r in requests) == 0
    after_faults = [r for r in requests if r["minute"] == "1" and r["model"] == "faq_match"]
    assert after_faults and int(after_faults[0]["sent"]) > 1000  # the load went on through the faults
    memory = list(csv.DictReader((out / "memory.csv").open()))
    assert len(memory) >= 8 and int(memory[0]["tritonserver"]) > 0 and int(memory[0]["front_door"]) > 0
    assert "failed after retries 0" in (out / "summary.md").read_text()
    assert "***" not in (out / "summary.md").read_text()
    assert "admin-key=***" in done.stderr  # the server's command line is logged, its key is not
    assert not re.search(r"admin-key=[^*]", done.stdout + done.stderr)
