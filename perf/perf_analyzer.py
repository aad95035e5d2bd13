"""Run Triton's ``perf_analyzer`` with real inputs and read back its CSV.

The binary comes from the ``tritonclient==2.51.0`` wheel (``.venv/bin/perf_analyzer``); it
needs ``libcudart.so.12`` even on CPU, which the ``nvidia-cuda-runtime-cu12`` wheel ships, so
:func:`environment` puts that folder on ``LD_LIBRARY_PATH``.

Inputs are real: questions from the FAQ test split and the bytes of real photos, written in
perf_analyzer's input-data JSON. Each concurrency level is a separate, time-bounded run with
its own CSV, so one slow level cannot stall a sweep, and a sweep's levels need not be linear.
The server URL is a parameter: the same sweep runs against a local CPU server, a GPU container
or a remote endpoint (``-u``, ``-i``, ``-H`` headers and ``--ssl-*`` flags pass through).
"""

from __future__ import annotations

import base64
import csv
import json
import logging
import os
import re
import shlex
import shutil
import struct
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from perf.results import LoadPoint

log = logging.getLogger(__name__)


LENIENT_STABILITY = 1000  # percent: any three windows count as stable
LENIENT_TRIALS = 3


class PerfAnalyzerError(RuntimeError):
    """perf_analyzer is missing, failed, or wrote no usable CSV."""


def locate_perf_analyzer() -> Path:
    """The binary next to this interpreter (the venv's ``bin/``), else on ``PATH``."""
    candidate = Path(sys.executable).parent / "perf_analyzer"
    if candidate.is_file():
        return candidate
    found = shutil.which("perf_analyzer")
    if found:
        return Path(found)
    raise PerfAnalyzerError(
        "perf_analyzer not found: install tritonclient==2.51.0 in this venv (`make setup`)"
    )


def cudart_dir() -> Path | None:
    """Folder of ``libcudart.so.12`` from the ``nvidia-cuda-runtime-cu12`` wheel, if installed."""
    try:
        import nvidia.cuda_runtime as cuda_runtime  # type: ignore[import-not-found]
    except ImportError:
        return None
    for base in getattr(cuda_runtime, "__path__", []):
        lib = Path(base) / "lib"
        if (lib / "libcudart.so.12").exists():
            return lib
    return None


def environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (default: this process's environment) with the CUDA runtime on the library path."""
    env = dict(os.environ if base is None else base)
    lib = cudart_dir()
    if lib is not None:
        paths = [str(lib), *[p for p in env.get("LD_LIBRARY_PATH", "").split(os.pathsep) if p]]
        env["LD_LIBRARY_PATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


def version() -> str:
    """``perf_analyzer --version``; a missing shared library becomes an error that says what to install."""
    proc = subprocess.run(
        [str(locate_perf_analyzer()), "--version"],
        env=environment(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    output = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0 or "Perf Analyzer Version" not in output:
        hint = ""
        if "libb64" in output:
            hint = " (install the Debian package libb64-0d: `make setup`)"
        elif "libcudart" in output:
            hint = " (install nvidia-cuda-runtime-cu12 from requirements/serving.lock)"
        raise PerfAnalyzerError(f"perf_analyzer does not run{hint}: {output[-300:]}")
    return output.splitlines()[-1]


# ------------------------------------------------------------------ input data


def serialize_bytes_tensor(items: Sequence[bytes]) -> bytes:
    """Triton's raw BYTES layout: each element as a 4-byte little-endian length, then its bytes.

    perf_analyzer copies a ``{"b64": ...}`` value into the request as the tensor's raw data, so
    for a BYTES input the base64 must encode this layout, not the bare file bytes.
    """
    return b"".join(struct.pack("<I", len(item)) + item for item in items)


def string_step(name: str, text: str) -> dict[str, object]:
    """One request with a single string element (a question)."""
    return {name: {"content": [text], "shape": [1]}}


def bytes_step(name: str, payload: bytes) -> dict[str, object]:
    """One request with a single binary element (an encoded image), base64 in the JSON."""
    encoded = base64.b64encode(serialize_bytes_tensor([payload])).decode("ascii")
    return {name: {"b64": encoded, "shape": [1]}}


def input_data(steps: Sequence[Mapping[str, object]]) -> dict[str, object]:
    """The input-data document: perf_analyzer sends ``steps`` round-robin, one per request."""
    if not steps:
        raise ValueError("input data needs at least one request")
    return {"data": [dict(step) for step in steps]}


def write_input_data(path: Path, steps: Sequence[Mapping[str, object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(input_data(steps)))
    return path


def text_input_data(path: Path, tensor: str, texts: Sequence[str]) -> Path:
    return write_input_data(path, [string_step(tensor, t) for t in texts])


def image_input_data(path: Path, tensor: str, images: Sequence[bytes]) -> Path:
    return write_input_data(path, [bytes_step(tensor, b) for b in images])


# ------------------------------------------------------------------ running


@dataclass(frozen=True)
class PerfAnalyzerRun:
    """One perf_analyzer sweep over ``concurrency`` levels against ``url``."""

    model: str
    input_data: Path | str = "random"
    url: str = "localhost:8000"
    protocol: str = "http"  # http or grpc
    concurrency: tuple[int, ...] = (1, 2, 4, 8)
    batch_size: int = 1
    measurement_mode: str = "count_windows"
    measurement_request_count: int = 50
    measurement_interval_ms: int = 5000
    stability_percentage: int = 20
    max_trials: int = 6
    # 0: stabilise on average latency (p99 on a shared 2-core machine rarely settles within
    # 20%); the CSV has p50/p90/p95/p99 whatever is used for stability.
    percentile: int = 0
    # No stable window within max_trials: measure again and accept the average of 3 windows
    # whatever their spread (``-s 1000 -r 3``). perf_analyzer 2.51's ``--request-count`` would be
    # the obvious alternative, but it hangs at concurrency > 1 (seen at 32).
    lenient_fallback: bool = True
    timeout_s: float = 180.0  # per concurrency level
    headers: Mapping[str, str] = field(default_factory=dict)
    extra_args: tuple[str, ...] = ()
    label: str = ""
    server: str = "triton"

    def command(
        self, concurrency: int, csv_path: Path, binary: Path | None = None, lenient: bool = False
    ) -> list[str]:
        cmd = [
            str(binary or locate_perf_analyzer()),
            "-m",
            self.model,
            "-u",
            self.url,
            "-i",
            self.protocol,
            "-b",
            str(self.batch_size),
            "--concurrency-range",
            f"{concurrency}:{concurrency}",
            "--input-data",
            str(self.input_data),
            "--measurement-mode",
            self.measurement_mode,
            "--measurement-interval",
            str(self.measurement_interval_ms),
            "-s",
            str(LENIENT_STABILITY if lenient else self.stability_percentage),
            "-r",
            str(LENIENT_TRIALS if lenient else self.max_trials),
            "-f",
            str(csv_path),
        ]
        if self.percentile:
            cmd += ["--percentile", str(self.percentile)]
        if self.measurement_mode == "count_windows":
            cmd += ["--measurement-request-count", str(self.measurement_request_count)]
        for key, value in self.headers.items():
            cmd += ["-H", f"{key}:{value}"]
        return [*cmd, *self.extra_args]

    def display_command(self, out_dir: Path | None = None) -> str:
        """The command as a person would type it (concurrency shown as the whole sweep)."""
        levels = ",".join(map(str, self.concurrency))
        cmd = self.command(
            self.concurrency[0], (out_dir or Path("out")) / f"{self.model}.csv", Path("perf_analyzer")
        )
        i = cmd.index("--concurrency-range")
        cmd[i + 1] = f"<{levels}>"
        return shlex.join(cmd)


def run_level(run: PerfAnalyzerRun, concurrency: int, out_dir: Path) -> list[LoadPoint]:
    """Run one concurrency level; return its points (empty, with the log kept, on failure).

    When perf_analyzer finds no stable window (it then writes no CSV; common on a shared 2-core
    machine) and ``lenient_fallback`` is set, the level is measured again and the average of
    three windows is accepted whatever their spread; such points carry ``extra["unstable"]``.
    """
    points = _run_level(run, concurrency, out_dir)
    if points or not run.lenient_fallback:
        return points
    log.info("perf_analyzer %s c=%d: no stable window, averaging 3 windows", run.model, concurrency)
    points = _run_level(run, concurrency, out_dir, lenient=True)
    return [replace(p, extra={**p.extra, "unstable": 1.0}) for p in points]


def _run_level(
    run: PerfAnalyzerRun, concurrency: int, out_dir: Path, lenient: bool = False
) -> list[LoadPoint]:
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"pa_{run.model}{'_' + run.label if run.label else ''}_c{concurrency}"
    csv_path = out_dir / f"{stem}.csv"
    log_path = out_dir / f"{stem}{'_lenient' if lenient else ''}.log"
    csv_path.unlink(missing_ok=True)
    cmd = run.command(concurrency, csv_path, lenient=lenient)
    log.info("perf_analyzer: %s", shlex.join(cmd))
    try:
        proc = subprocess.run(
            cmd, env=environment(), capture_output=True, text=True, timeout=run.timeout_s, check=False
        )
        log_path.write_text(proc.stdout + proc.stderr)
    except subprocess.TimeoutExpired as exc:
        log_path.write_text(f"timed out after {run.timeout_s}s\n{exc.stdout or ''}{exc.stderr or ''}")
        log.warning("perf_analyzer %s c=%d timed out after %.0fs", run.model, concurrency, run.timeout_s)
        return []
    if proc.returncode != 0 or not csv_path.exists():
        log.warning(
            "perf_analyzer %s c=%d failed (rc %d), see %s: %s",
            run.model,
            concurrency,
            proc.returncode,
            log_path,
            (proc.stdout + proc.stderr)[-400:],
        )
        return []
    points = parse_csv(csv_path, model=run.model, server=run.server, label=run.label)
    counts = parse_log(proc.stdout)
    return [replace(p, **counts.get(p.concurrency, {})) for p in points]


def run_sweep(run: PerfAnalyzerRun, out_dir: Path) -> list[LoadPoint]:
    points: list[LoadPoint] = []
    for level in run.concurrency:
        points += run_level(run, level, out_dir)
    return points


# ------------------------------------------------------------------ CSV and log

_LEVEL_RE = re.compile(r"^Request concurrency: (\d+)", re.MULTILINE)
_COUNT_RE = re.compile(r"^\s+Request count: (\d+)", re.MULTILINE)
_AVG_RE = re.compile(r"^\s+Avg latency: (\d+) usec", re.MULTILINE)


def parse_log(text: str) -> dict[int, dict[str, float | int]]:
    """Client request count and average latency per concurrency level from perf_analyzer's stdout.

    The CSV of 2.51 has neither; the report shows how many requests each figure rests on.
    """
    found: dict[int, dict[str, float | int]] = {}
    starts = [(m.start(), int(m.group(1))) for m in _LEVEL_RE.finditer(text)]
    for i, (start, level) in enumerate(starts):
        end = starts[i + 1][0] if i + 1 < len(starts) else len(text)
        section = text[start:end]
        entry: dict[str, float | int] = {}
        if m := _COUNT_RE.search(section):
            entry["requests"] = int(m.group(1))
        if m := _AVG_RE.search(section):
            entry["avg_ms"] = int(m.group(1)) / _US
        if entry:
            found[level] = entry
    return found


_US = 1000.0  # perf_analyzer writes latencies in microseconds


def _float(row: Mapping[str, str], name: str) -> float | None:
    value = row.get(name)
    if value is None or value.strip() == "":
        return None
    return float(value)


def parse_csv(path: Path, model: str, server: str = "triton", label: str = "") -> list[LoadPoint]:
    """Read the ``-f`` CSV of perf_analyzer 2.51 (one row per concurrency level).

    Only the first table is read: with ``--verbose-csv`` a second, server-metrics table may
    follow a blank line.
    """
    lines: list[str] = []
    for line in path.read_text().splitlines():
        if not line.strip():
            break
        lines.append(line)
    rows = list(csv.DictReader(lines))
    if not rows:
        raise PerfAnalyzerError(f"{path}: no rows")
    if "Inferences/Second" not in rows[0] or "p99 latency" not in rows[0]:
        raise PerfAnalyzerError(f"{path}: not a perf_analyzer CSV (columns {list(rows[0])})")
    points = []
    breakdown = {
        "client_send_ms": "Client Send",
        "network_ms": "Network+Server Send/Recv",
        "server_queue_ms": "Server Queue",
        "server_compute_input_ms": "Server Compute Input",
        "server_compute_infer_ms": "Server Compute Infer",
        "server_compute_output_ms": "Server Compute Output",
        "client_recv_ms": "Client Recv",
    }
    for row in rows:
        concurrency = row.get("Concurrency") or row.get("Request Rate") or "0"
        extra = {
            key: value / _US
            for key, column in breakdown.items()
            if (value := _float(row, column)) is not None
        }
        points.append(
            LoadPoint(
                model=model,
                server=server,
                tool="perf_analyzer",
                concurrency=int(float(concurrency)),
                throughput=float(row["Inferences/Second"]),
                p50_ms=float(row["p50 latency"]) / _US,
                p90_ms=float(row["p90 latency"]) / _US,
                p95_ms=float(row["p95 latency"]) / _US,
                p99_ms=float(row["p99 latency"]) / _US,
                avg_ms=avg / _US if (avg := _float(row, "Avg latency")) is not None else None,
                label=label,
                extra=extra,
            )
        )
    return points
