"""Measure variants of the served settings, to choose them from numbers.

Each variant is the model specs with a few fields replaced (dynamic-batching delay and
preferred sizes, instance counts, ONNX Runtime threads), rendered into a fresh repository,
served by a fresh Triton and swept by perf_analyzer with the same real inputs. The spec files
(``faq/specs.py``, ``imaging/specs.py``) are not touched: the chosen values are proposed to
their owners, with the evidence, in ``docs/perf.md``.

    python -m perf.tuning --model faq_match          # the FAQ variants
    python -m perf.tuning --model resnet152_pytorch  # the image variants
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import statistics
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from perf import OUT_DIR, perf_analyzer, servers, workloads
from perf.perf_analyzer import PerfAnalyzerRun
from perf.results import LoadPoint, load_points, save_points
from serving.modelspec import DynamicBatching, Instances, ModelSpec, OrtSettings
from serving.triton import TritonServer

log = logging.getLogger(__name__)

Overrides = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class Variant:
    """A named change to the served specs: ``make(specs)`` returns per-model field overrides."""

    name: str
    description: str
    make: Callable[[Mapping[str, ModelSpec]], Overrides]


def _models_of(ensemble: str, specs: Mapping[str, ModelSpec], kind: str) -> list[str]:
    return [n for n in servers.closure([ensemble], specs) if specs[n].kind == kind]


def _batching_all(
    ensemble: str, batching: DynamicBatching | None
) -> Callable[[Mapping[str, ModelSpec]], Overrides]:
    def make(specs: Mapping[str, ModelSpec]) -> Overrides:
        return {
            n: {"dynamic_batching": batching}
            for n in servers.closure([ensemble], specs)
            if specs[n].kind != "ensemble" and specs[n].dynamic_batching is not None
        }

    return make


def _network(ensemble: str, **changes: Any) -> Callable[[Mapping[str, ModelSpec]], Overrides]:
    def make(specs: Mapping[str, ModelSpec]) -> Overrides:
        step = servers.onnx_step(ensemble, specs)
        return {step.name: dict(changes)} if step else {}

    return make


def _python_steps(ensemble: str, **changes: Any) -> Callable[[Mapping[str, ModelSpec]], Overrides]:
    def make(specs: Mapping[str, ModelSpec]) -> Overrides:
        return {n: dict(changes) for n in _models_of(ensemble, specs, "python")}

    return make


def _merge(
    *makers: Callable[[Mapping[str, ModelSpec]], Overrides],
) -> Callable[[Mapping[str, ModelSpec]], Overrides]:
    def make(specs: Mapping[str, ModelSpec]) -> Overrides:
        merged: Overrides = {}
        for maker in makers:
            for name, changes in maker(specs).items():
                merged.setdefault(name, {}).update(changes)
        return merged

    return make


# The served settings measured a second time, last: the spread between the two is the noise.
AGAIN = Variant("as specified, again", "the served settings, measured again at the end", lambda specs: {})


def is_noop(overrides: Overrides, specs: Mapping[str, ModelSpec]) -> bool:
    """True when every override equals the spec's current value (the variant is the spec)."""
    return all(
        getattr(specs[name], key) == value for name, c in overrides.items() for key, value in c.items()
    )


def faq_variants(ensemble: str = "faq_match") -> list[Variant]:
    return [
        Variant("as specified", "the settings in faq/specs.py", lambda specs: {}),
        Variant(
            "no batching delay",
            "dynamic batching with max_queue_delay 0",
            _batching_all(ensemble, DynamicBatching()),
        ),
        Variant(
            "delay 500 µs",
            "every batched step: delay 500 µs, preferred 8/16",
            _batching_all(ensemble, DynamicBatching((8, 16), 500)),
        ),
        Variant(
            "delay 2 ms",
            "every batched step: delay 2000 µs, preferred 16/32",
            _batching_all(ensemble, DynamicBatching((16, 32), 2000)),
        ),
        Variant(
            "2 instances",
            "2 instances of every step (ONNX with 1 intra-op thread each)",
            _merge(
                _python_steps(ensemble, instances=Instances(cpu=2, gpu=1)),
                _network(ensemble, instances=Instances(cpu=2, gpu=1), ort=OrtSettings(1, 1)),
            ),
        ),
        Variant(
            "ORT 1 thread", "ONNX Runtime intra-op 1, inter-op 1", _network(ensemble, ort=OrtSettings(1, 1))
        ),
        Variant(
            "ORT 2 threads", "ONNX Runtime intra-op 2, inter-op 1", _network(ensemble, ort=OrtSettings(2, 1))
        ),
        AGAIN,
    ]


def image_variants(ensemble: str = "resnet152_pytorch") -> list[Variant]:
    """Network step variants; the one equal to the current spec is skipped when measured."""
    return [
        Variant("as specified", "the settings in imaging/specs.py", lambda specs: {}),
        Variant(
            "1 instance x 2 threads",
            "one ONNX instance, intra-op 2 threads",
            _network(ensemble, instances=Instances(cpu=1, gpu=1), ort=OrtSettings(2, 1)),
        ),
        Variant(
            "2 instances x 1 thread",
            "two ONNX instances, intra-op 1 thread each",
            _network(ensemble, instances=Instances(cpu=2, gpu=1), ort=OrtSettings(1, 1)),
        ),
        Variant(
            "1 instance x 1 thread",
            "one ONNX instance, intra-op 1 thread",
            _network(ensemble, instances=Instances(cpu=1, gpu=1), ort=OrtSettings(1, 1)),
        ),
        Variant(
            "network delay 0",
            "network step: preferred 4/8, no batching delay",
            _network(ensemble, dynamic_batching=DynamicBatching((4, 8), 0)),
        ),
        Variant(
            "network delay 20 ms",
            "network step: preferred 8, delay 20000 µs",
            _network(ensemble, dynamic_batching=DynamicBatching((8,), 20000)),
        ),
        AGAIN,
    ]


def describe_overrides(overrides: Overrides) -> str:
    parts = []
    for name, changes in sorted(overrides.items()):
        rendered = []
        for key, value in changes.items():
            if dataclasses.is_dataclass(value):
                value = ", ".join(f"{f.name}={getattr(value, f.name)}" for f in dataclasses.fields(value))
            rendered.append(f"{key}({value})")
        parts.append(f"{name}: {'; '.join(rendered)}")
    return " | ".join(parts) or "no change"


def run_variants(
    ensemble: str,
    variants: list[Variant],
    concurrency: tuple[int, ...],
    out_dir: Path,
    window_requests: int,
    rounds: int = 3,
    timeout_s: float = 240.0,
) -> list[LoadPoint]:
    """Every variant on its own server, all up at once, measured round-robin ``rounds`` times.

    On a shared machine the background load drifts by the minute; measuring variant A, then
    B, then C, and again, spreads that drift over all of them instead of blaming one. Idle
    servers cost memory, not CPU. Returns every measurement (``extra["round"]``);
    :func:`medians` condenses them.
    """
    specs = servers.catalog()
    image = servers.input_tensor(ensemble, specs) != "TEXT"
    if image:
        data = workloads.write_pa_inputs(out_dir, [], workloads.image_files())["image"]
    else:
        data = workloads.write_pa_inputs(out_dir, workloads.faq_questions(), [])["faq"]
    chosen: list[Variant] = []
    started: dict[str, TritonServer] = {}
    points: list[LoadPoint] = []
    try:
        for variant in variants:
            overrides = variant.make(specs)
            if overrides and is_noop(overrides, specs):
                log.info("variant %s is what the spec already says; skipped", variant.name)
                continue
            log.info("variant %s: %s", variant.name, describe_overrides(overrides))
            slug = _slug(variant.name)
            repository = out_dir / f"tune_repository_{slug}"
            servers.build_repository([ensemble], repository, overrides)
            server = servers.triton(repository, out_dir / f"triton_tune_{slug}.log")
            server.start(timeout=900)
            started[variant.name] = server
            chosen.append(variant)
        for round_index in range(rounds):
            order = chosen if round_index % 2 == 0 else list(reversed(chosen))
            for variant in order:
                run = PerfAnalyzerRun(
                    model=ensemble,
                    input_data=data,
                    url=started[variant.name].http_url,
                    concurrency=concurrency,
                    measurement_request_count=window_requests,
                    timeout_s=timeout_s,
                    label=f"{_slug(variant.name)}_r{round_index}",
                )
                found = perf_analyzer.run_sweep(run, out_dir)
                points += [
                    dataclasses.replace(
                        p, label=f"tune:{variant.name}", extra={**p.extra, "round": round_index}
                    )
                    for p in found
                ]
                save_points(points, out_dir / f"tune_{ensemble}.jsonl")
    finally:
        for server in started.values():
            server.stop()
    return points


def medians(points: list[LoadPoint]) -> list[LoadPoint]:
    """One point per (variant, concurrency): the median throughput, p50 and p99 over rounds."""
    groups: dict[tuple[str, str, int], list[LoadPoint]] = {}
    for p in points:
        groups.setdefault((p.model, p.label, p.concurrency), []).append(p)
    condensed = []
    for (_model, _label, _level), group in groups.items():
        first = group[0]
        condensed.append(
            dataclasses.replace(
                first,
                throughput=statistics.median(p.throughput for p in group),
                p50_ms=statistics.median(p.p50_ms for p in group),
                p99_ms=statistics.median(p.p99_ms for p in group),
                p90_ms=None,
                p95_ms=None,
                avg_ms=None,
                requests=sum(p.requests or 0 for p in group) or None,
                extra={
                    "rounds": float(len(group)),
                    "min_throughput": min(p.throughput for p in group),
                    "max_throughput": max(p.throughput for p in group),
                },
            )
        )
    return condensed


def exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so that ``finally`` blocks stop the servers this run started."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


def _slug(text: str) -> str:
    """ASCII file-name part: the Python backend stub cannot import from a non-ASCII path."""
    return "".join(c if c.isascii() and c.isalnum() else "_" for c in text).strip("_")


def summary(points: list[LoadPoint], p99_budget_ms: float | None = None) -> list[str]:
    """Markdown rows: per variant and level, median req/s (min–max over rounds), p50, p99.

    ✓ marks a level whose median p99 is within ``p99_budget_ms``.
    """
    rows = [
        "| variant | concurrency | req/s (median) | min–max | p50 ms | p99 ms | rounds |",
        "|---|---|---|---|---|---|---|",
    ]
    for p in sorted(medians(points), key=lambda p: (p.label, p.concurrency)):
        mark = " ✓" if p99_budget_ms is not None and p.p99_ms <= p99_budget_ms else ""
        spread = f"{p.extra['min_throughput']:,.1f}–{p.extra['max_throughput']:,.1f}"
        rows.append(
            f"| {p.label.removeprefix('tune:')} | {p.concurrency} | {p.throughput:,.1f}{mark} | {spread} | "
            f"{p.p50_ms:.1f} | {p.p99_ms:.1f} | {p.extra['rounds']:.0f} |"
        )
    return rows


app = typer.Typer(add_completion=False, help=__doc__, rich_markup_mode=None)


@app.command()
def main(
    model: Annotated[
        str, typer.Option(help="ensemble to tune: faq_match or an image ensemble")
    ] = "faq_match",
    concurrency: Annotated[list[int] | None, typer.Option(help="levels (repeatable)")] = None,
    only: Annotated[list[str] | None, typer.Option(help="only these variants (repeatable)")] = None,
    rounds: Annotated[int, typer.Option(help="round-robin repetitions")] = 3,
    out: Annotated[Path, typer.Option(help="raw output folder")] = OUT_DIR / "tuning",
) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    exit_on_sigterm()
    out = out.resolve()
    image = model != "faq_match"
    variants = image_variants(model) if image else faq_variants(model)
    if only:
        variants = [v for v in variants if v.name in only]
    levels = tuple(concurrency or ((4, 8) if image else (8, 16, 32)))
    points = run_variants(model, variants, levels, out, window_requests=16 if image else 1000, rounds=rounds)
    for row in summary(points, None if image else 50.0):
        typer.echo(row)
    typer.echo(f"points: {out / f'tune_{model}.jsonl'}")


def load(out: Path, model: str) -> list[LoadPoint]:
    path = out / f"tune_{model}.jsonl"
    return load_points(path) if path.exists() else []


if __name__ == "__main__":
    app()
