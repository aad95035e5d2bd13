"""Run metrics in Prometheus' format, as the serving side exposes Triton's. The ingester serves
them (``ingest --metrics-port``; a ServiceMonitor or a scrape config reads them); a scheduled
scoring run writes them for the node exporter's textfile collector (``score-window
--metrics-file``), and its log carries the same figures."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, start_http_server, write_to_textfile


class IngestMetrics:
    """Counters of one ingester process, and its lag behind the topic."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.messages = Counter("sensor_ingest_messages", "Messages consumed", registry=r)
        self.stored = Counter("sensor_ingest_readings_stored", "Readings newly stored", registry=r)
        self.dead = Counter("sensor_ingest_dead_letters", "Events parked, by kind", ["kind"], registry=r)
        self.batches = Counter("sensor_ingest_batches", "Batches committed", registry=r)
        self.lag = Gauge(
            "sensor_ingest_lag_messages", "Messages in the assigned partitions not yet stored", registry=r
        )
        self.watermark = Gauge(
            "sensor_ingest_watermark_seconds", "Latest reading time stored, Unix time", registry=r
        )

    def serve(self, port: int) -> None:
        start_http_server(port, registry=self.registry)

    def add(self, messages: int, stored: int, kinds: list[str], watermark: datetime | None) -> None:
        self.messages.inc(messages)
        self.stored.inc(stored)
        for kind in kinds:
            self.dead.labels(kind).inc()
        self.batches.inc()
        if watermark is not None:
            self.watermark.set(watermark.timestamp())


def consumer_lag(consumer: Any) -> int:
    """Messages between each assigned partition's position and its end."""
    lag = 0
    assigned = consumer.assignment()
    for tp in consumer.position(assigned) if assigned else []:
        _low, high = consumer.get_watermark_offsets(tp, timeout=2, cached=False)
        lag += max(0, high - tp.offset) if tp.offset >= 0 else high
    return lag


def write_window_metrics(path: Path, outcomes: list[Any]) -> None:
    """A scoring run's figures per window, for the textfile collector (written whole, atomically)."""
    registry = CollectorRegistry()
    labels = ["window", "shard"]
    gauges = {
        name: Gauge(f"sensor_window_{name}", text, labels, registry=registry)
        for name, text in (
            ("series", "Series scored"),
            ("rows", "Intervals scored"),
            ("anomalies", "Intervals flagged"),
            ("failed", "Series that failed"),
            ("seconds", "Wall time of the window"),
            ("succeeded", "1 if the window has its success marker"),
        )
    }
    lag = Gauge(
        "sensor_window_lag_seconds", "From the window's end to the end of its run", labels, registry=registry
    )
    for o in outcomes:
        key = (o.window, o.shard)
        for name, value in (
            ("series", o.series),
            ("rows", o.rows),
            ("anomalies", o.anomalies),
            ("failed", len(o.failed)),
            ("seconds", o.seconds),
            ("succeeded", int(o.status in ("scored", "skipped") and not o.failed)),
        ):
            gauges[name].labels(*key).set(value)
        end = datetime.fromisoformat(o.window.split("/")[1])
        lag.labels(*key).set((datetime.now(UTC) - end).total_seconds())
    write_to_textfile(str(path), registry)
