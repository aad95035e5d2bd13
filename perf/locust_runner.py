"""Run ``perf/locustfile.py`` headless, bounded in time, and read its CSV.

Every run has a fixed user count and duration (``-t``) and a hard subprocess timeout on top.
Targets must be loopback addresses unless ``allow_remote`` is set explicitly: a load test
pointed at someone else's machine by mistake is a denial of service.
"""

from __future__ import annotations

import csv
import ipaddress
import logging
import os
import shlex
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from urllib.parse import urlparse

from perf import PERF_DIR, machine
from perf.results import LoadPoint
from serving.paths import REPO_ROOT

log = logging.getLogger(__name__)
LOCUSTFILE = PERF_DIR / "locustfile.py"


class LocustError(RuntimeError):
    """locust failed or wrote no stats."""


def is_loopback(url: str) -> bool:
    """True when ``url``'s host is ``localhost`` or a loopback IP (127.0.0.0/8, ::1)."""
    host = urlparse(url if "://" in url else f"//{url}").hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_target(url: str, allow_remote: bool = False) -> None:
    if not allow_remote and not is_loopback(url):
        raise LocustError(
            f"refusing to load-test {url}: not a loopback address (pass allow_remote for your own server)"
        )


@dataclass(frozen=True)
class LocustRun:
    """One locust run: ``users`` closed-loop users of ``user_class`` for ``run_time_s`` seconds."""

    user_class: str  # TritonFaqUser, TritonImageUser, AzmlFaqUser, AzmlImageUser
    host: str  # http://127.0.0.1:PORT
    model: str  # the name the point is reported under
    server: str  # triton or azmlinfsrv
    users: int = 8
    run_time_s: int = 20
    workload: Path | None = None
    triton_model: str | None = None  # PERF_MODEL for the Triton users
    label: str = ""
    allow_remote: bool = False
    env: Mapping[str, str] = field(default_factory=dict)

    @property
    def stem(self) -> str:
        label = f"_{self.label}" if self.label else ""
        return f"locust_{self.server}_{self.model}{label}_u{self.users}"

    def command(self, csv_prefix: Path) -> list[str]:
        return [
            sys.executable,
            "-m",
            "locust",
            "-f",
            str(LOCUSTFILE),
            self.user_class,
            "--headless",
            "-u",
            str(self.users),
            "-r",
            str(self.users),
            "-t",
            f"{self.run_time_s}s",
            "--stop-timeout",
            "10",
            "--csv",
            str(csv_prefix),
            "--host",
            self.host,
            "--only-summary",
            "--loglevel",
            "WARNING",
        ]

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.env)
        paths = [str(REPO_ROOT), *[p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]]
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
        if self.workload is not None:
            env["PERF_WORKLOAD"] = str(self.workload)
        if self.triton_model:
            env["PERF_MODEL"] = self.triton_model
        return env

    def display_command(self) -> str:
        cmd = self.command(Path("perf/out") / self.stem)
        cmd[0:3] = ["locust"]
        prefix = f"PERF_MODEL={self.triton_model} " if self.triton_model else ""
        return prefix + shlex.join(cmd)


def run_locust(run: LocustRun, out_dir: Path) -> LoadPoint | None:
    """Run once; the aggregated point, or None (log kept in ``out_dir``) if nothing was measured."""
    check_target(run.host, run.allow_remote)
    out_dir.mkdir(parents=True, exist_ok=True)
    prefix = out_dir / run.stem
    stats = Path(f"{prefix}_stats.csv")
    stats.unlink(missing_ok=True)
    cmd = run.command(prefix)
    log.info("locust: %s", shlex.join(cmd))
    cpu_before = machine.cpu_times()
    try:
        proc = subprocess.run(
            cmd,
            env=run.environment(),
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=run.run_time_s + 90,
            check=False,
        )
        Path(f"{prefix}.log").write_text(proc.stdout + proc.stderr)
    except subprocess.TimeoutExpired as exc:
        Path(f"{prefix}.log").write_text(f"timed out\n{exc.stdout or ''}{exc.stderr or ''}")
        log.warning("locust %s timed out", run.stem)
        return None
    # locust exits 1 when any request failed; the stats still say how many did.
    if not stats.exists():
        log.warning("locust %s wrote no stats (rc %d): %s", run.stem, proc.returncode, proc.stderr[-400:])
        return None
    point = parse_stats_csv(stats, model=run.model, server=run.server, users=run.users, label=run.label)
    if point is None or point.requests == 0:
        log.warning("locust %s: no requests completed; see %s.log", run.stem, prefix)
    steal = machine.steal_share(cpu_before, machine.cpu_times())
    if point is not None and steal is not None:
        point = replace(point, extra={**point.extra, "steal": round(steal, 4)})
    return point


def _num(value: str | None) -> float | None:
    if value is None or value.strip() in ("", "N/A"):
        return None
    return float(value)


def parse_stats_csv(path: Path, model: str, server: str, users: int, label: str = "") -> LoadPoint | None:
    """The ``Aggregated`` row of locust's ``*_stats.csv`` (milliseconds, requests/s)."""
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    row = next((r for r in rows if r.get("Name") == "Aggregated"), None)
    if row is None:
        return None
    requests = int(row["Request Count"])
    failures = int(row["Failure Count"])
    if requests == 0:
        return LoadPoint(
            model, server, "locust", users, 0.0, 0.0, 0.0, requests=0, failures=failures, label=label
        )
    return LoadPoint(
        model=model,
        server=server,
        tool="locust",
        concurrency=users,
        throughput=float(row["Requests/s"]),
        p50_ms=_num(row.get("50%")) or float(row["Median Response Time"]),
        p90_ms=_num(row.get("90%")),
        p95_ms=_num(row.get("95%")),
        p99_ms=_num(row.get("99%")) or float(row["Max Response Time"]),
        avg_ms=_num(row.get("Average Response Time")),
        requests=requests,
        failures=failures,
        label=label,
    )
