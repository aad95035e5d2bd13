"""What the numbers were measured on: CPU, cores, memory, load, and package versions.

Throughput on a shared 2-core machine means little without the load other processes put on
it, so the load average is sampled before and after each run and printed with the results.
"""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path

PACKAGES = (
    "nvidia-pytriton",
    "tritonclient",
    "locust",
    "azureml-inference-server-http",
    "onnxruntime",
    "torch",
    "scikit-learn",
)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def memory_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    return None


def load_average() -> tuple[float, float, float]:
    try:
        return os.getloadavg()
    except OSError:
        return (0.0, 0.0, 0.0)


def versions() -> dict[str, str]:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def describe() -> dict[str, object]:
    mem = memory_gib()
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count() or 0,
        "memory_gib": round(mem, 1) if mem else None,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "gpu": "none",
        "versions": versions(),
    }


def cpu_times() -> tuple[int, ...] | None:
    """The machine's cumulative CPU time counters (``/proc/stat``, first line), or None."""
    try:
        with open("/proc/stat") as fh:
            return tuple(int(v) for v in fh.readline().split()[1:])
    except (OSError, ValueError):
        return None


def steal_share(before: tuple[int, ...] | None, after: tuple[int, ...] | None) -> float | None:
    """Share of the CPU time between two :func:`cpu_times` that the hypervisor gave to other
    guests ("steal"), or None where the kernel does not report it.

    On this shared VM steal swings from a tenth to more than half of the machine within
    minutes, and throughput follows it (docs/perf.md, "Reading the numbers"), so the report
    prints it next to the figures, and an interleaved FAQ round counts for the 20x target only
    when it stayed low on both sides (:func:`perf.report.calm`).
    """
    if before is None or after is None or len(before) < 8 or len(after) < 8:
        return None
    spent = [b - a for a, b in zip(before, after, strict=False)]
    total = sum(spent[:8])  # user..steal; guest time is already counted in user
    return spent[7] / total if total > 0 else None
