"""The one record every measurement becomes, whichever tool took it.

perf_analyzer, locust and the in-process ONNX Runtime loop report in different units and
files; converting them all to :class:`LoadPoint` (requests/s, milliseconds) lets the report,
the plots and the ratios treat them alike. Points are saved as JSON lines under ``perf/out/``
so a report can be re-rendered without measuring again.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path


@dataclass(frozen=True)
class LoadPoint:
    """One load level of one model on one server, measured by one tool.

    ``server``: ``triton``, ``azmlinfsrv`` or ``onnxruntime`` (in-process, no server).
    ``tool``: ``perf_analyzer``, ``locust`` or ``inprocess``.
    ``concurrency``: perf_analyzer concurrency, locust users, or the batch size in-process.
    ``throughput``: requests/s (perf_analyzer and locust) or items/s (in-process).
    """

    model: str
    server: str
    tool: str
    concurrency: int
    throughput: float
    p50_ms: float
    p99_ms: float
    p90_ms: float | None = None
    p95_ms: float | None = None
    avg_ms: float | None = None
    requests: int | None = None
    failures: int = 0
    label: str = ""  # which variant (tuning runs) or baseline (a)/(b)/(c)
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.model, self.server, self.tool, self.label)


def save_points(points: Iterable[LoadPoint], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        for point in points:
            fh.write(json.dumps(asdict(point)) + "\n")


def load_points(path: Path) -> list[LoadPoint]:
    names = {f.name for f in fields(LoadPoint)}
    points = []
    for line in path.read_text().splitlines():
        if line.strip():
            raw = json.loads(line)
            points.append(LoadPoint(**{k: v for k, v in raw.items() if k in names}))
    return points


def best(points: Iterable[LoadPoint], max_p99_ms: float | None = None) -> LoadPoint | None:
    """The highest-throughput point without failures (and within a p99 budget when given)."""
    candidates = [p for p in points if p.failures == 0 and (max_p99_ms is None or p.p99_ms <= max_p99_ms)]
    return max(candidates, key=lambda p: p.throughput, default=None)
