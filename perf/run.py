"""The real-time benchmark: perf_analyzer and locust on Triton, beside Azure ML's scoring server.

    python -m perf.run [--quick] [--url HOST:8000 --no-baselines] [--model M] [--out DIR]

The tools keep their own records in ``perf/results/<UTC date>/``; this module starts what is
measured, runs interleaved A/B rounds and writes one summary table (docs/perf.md)."""

from __future__ import annotations

import base64
import csv
import json
import logging
import os
import shutil
import statistics
import struct
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from perf import OUT_DIR, RESULTS_DIR, publish
from perf.payloads import SHED
from serving.paths import REPO_ROOT

if TYPE_CHECKING:
    from serving.triton import TritonServer

log = logging.getLogger("perf.run")
SECTION = "## Real-time serving"
FAQ, RATIO_MODEL = "faq_match", "resnet152_pytorch"  # RATIO_MODEL: measured against its raw network


class BenchmarkError(RuntimeError):
    """A stage could not measure: a tool failed, or the server died."""


@dataclass(frozen=True)
class Plan:
    """How long and how hard each stage runs; ``--quick`` shrinks every number."""

    faq_range: str = "8:32:8"  # perf_analyzer --concurrency-range start:end:step
    image_range: str = "2:8:2"
    window: int = 400  # requests per perf_analyzer measurement window, FAQ
    image_window: int = 40  # the same for images (ResNet-152 serves a few per second on 2 cores)
    seconds: int = 20  # per locust visit
    rounds: int = 5  # interleaved A/B rounds per ratio


QUICK = Plan(faq_range="8:16:8", image_range="2:4:2", window=60, image_window=8, seconds=6, rounds=1)


@dataclass(frozen=True)
class Point:
    """One measured load level: requests/s (items/s in-process) and latency in milliseconds."""

    concurrency: float
    throughput: float
    p50_ms: float
    p99_ms: float
    failures: int = 0
    shed: int = 0  # refused by a queue policy (HTTP 503), not counted in throughput or latency


def write_inputs(folder: Path) -> dict[str, Path]:
    """perf_analyzer input-data files and the locust workload, all from the same real data:
    held-out FAQ duplicates (wordings the model never trained on) and the photos in wheels."""
    from faq.data import load_dataset, split_duplicates
    from faq.specs import TEXT
    from imaging.samples import all_samples
    from imaging.specs import IMAGE

    texts = [str(t) for t in split_duplicates(load_dataset())[1]["text"]]
    images = list(all_samples().values())
    # perf_analyzer copies a "b64" value in as the tensor's raw data, so it must hold Triton's
    # BYTES layout (a 4-byte length, then the bytes), not the bare file.
    raw = [struct.pack("<I", len(b)) + b for b in (p.read_bytes() for p in images)]
    documents = {
        "faq": {"data": [{TEXT: {"content": [t], "shape": [1]}} for t in texts]},
        "image": {"data": [{IMAGE: {"b64": base64.b64encode(b).decode(), "shape": [1]}} for b in raw]},
        "workload": {"questions": texts, "image_files": [str(p) for p in images]},
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, document in documents.items():
        (folder / f"{name}.json").write_text(json.dumps(document))
    return {name: folder / f"{name}.json" for name in documents}


def tool_environment(**extra: str) -> dict[str, str]:
    """perf_analyzer needs ``libcudart.so.12`` even on CPU (the nvidia-cuda-runtime-cu12 wheel)."""
    import nvidia.cuda_runtime as cuda_runtime  # type: ignore[import-not-found]

    env = {**os.environ, **extra}
    libs = [str(Path(p) / "lib") for p in cuda_runtime.__path__]
    env["LD_LIBRARY_PATH"] = os.pathsep.join([*libs, env.get("LD_LIBRARY_PATH", "")]).strip(os.pathsep)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")]).strip(os.pathsep)
    return env


def _run(command: list[str], log_file: Path, timeout: float, env: dict[str, str]) -> None:
    log.info("$ %s", " ".join(command))
    with log_file.open("w") as out:
        proc = subprocess.run(command, stdout=out, stderr=subprocess.STDOUT, env=env, timeout=timeout)
    if proc.returncode != 0:
        tail = log_file.read_text()[-600:]
        raise BenchmarkError(f"{command[0]} exited {proc.returncode} ({log_file}):\n{tail}")


def perf_analyzer(model: str, url: str, data: Path, span: str, csv_path: Path, window: int) -> list[Point]:
    """One perf_analyzer sweep over its own ``--concurrency-range``; the points of its CSV."""
    flags = f"-i http --concurrency-range {span} --measurement-mode count_windows -s 50 -r 10"
    files = ["--measurement-request-count", str(window), "--input-data", str(data), "-f", str(csv_path)]
    binary = str(Path(sys.executable).parent / "perf_analyzer")
    command = [binary, "-m", model, "-u", url, *flags.split(), *files]
    _run(command, csv_path.with_suffix(".log"), 900, tool_environment())
    with csv_path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    numbers = ("Concurrency", "Inferences/Second", "p50 latency", "p99 latency")
    points = [Point(*(float(r[k]) / (1000 if "latency" in k else 1) for k in numbers)) for r in rows]
    return sorted(points, key=lambda p: p.concurrency)  # its CSV is sorted by throughput


def locust(
    user: str, host: str, users: int, seconds: int, prefix: Path, env: dict[str, str], extra: str = ""
) -> Point:
    """One headless visit of ``perf/locustfile.py``'s ``user`` (``extra``: more locust flags);
    the row of its stats CSV for the requests served."""
    flags = f"--headless -u {users} -r {users} -t {seconds}s --stop-timeout 10 --only-summary {extra}"
    command = [sys.executable, "-m", "locust", "-f", str(REPO_ROOT / "perf" / "locustfile.py"), user]
    html = OUT_DIR / "html" / f"{prefix.name}.html"  # 0.7 MB each: a scratch view, the CSVs are the record
    html.parent.mkdir(parents=True, exist_ok=True)
    records = ["--csv", str(prefix), "--html", str(html), "--host", host]
    try:
        _run([*command, *flags.split(), *records], prefix.with_suffix(".log"), seconds + 120, env)
    except BenchmarkError:  # locust exits 1 when a request failed; its CSV counts the failures
        if not Path(f"{prefix}_stats.csv").exists():
            raise
    with open(f"{prefix}_stats.csv", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["Name"] != "Aggregated"]
    served = [r for r in rows if not r["Name"].endswith(SHED)]
    shed = sum(int(r["Request Count"]) for r in rows if r["Name"].endswith(SHED))
    if len(served) != 1:
        raise BenchmarkError(f"{prefix}_stats.csv: no request was served")
    (row,) = served
    latency = (float(row["50%"]), float(row["99%"]))
    return Point(users, float(row["Requests/s"]), *latency, failures=int(row["Failure Count"]), shed=shed)


def interleave(visits: dict[str, Callable[[int], float]], rounds: int) -> list[dict[str, float]]:
    """Each visit once per round, the order reversed every other round, so that both figures of a
    round see one background load (two figures taken minutes apart on a shared machine measure
    the machine, not the servers). Returns each round's figures by visit name."""
    results = []
    for number in range(rounds):
        order = list(visits) if number % 2 == 0 else list(reversed(visits))
        results.append({name: visits[name](number) for name in order})
    return results


@dataclass
class Watched:
    """A Triton this run started; calling it returns its address, or raises
    :class:`BenchmarkError` with the end of its log once it has died."""

    server: TritonServer

    def __call__(self) -> str:
        if self.server.process is None or self.server.process.poll() is not None:
            tail = self.server.log_path.read_text(errors="replace")[-1500:]
            raise BenchmarkError(f"Triton died during the benchmark; the end of its log:\n{tail}")
        return f"localhost:{self.server.ports.http}"


@contextmanager
def triton(
    models: list[str],
    folder: Path,
    repository: Path = OUT_DIR / "model_repository",
    admin_key: str | None = None,
) -> Iterator[Watched]:
    """Triton on free loopback ports with ``models`` and their steps, in a repository of its own
    (with an ``admin_key``: under explicit model control, the repository API behind the key)."""
    from export.build_repository import build
    from serving.triton import Ports, TritonServer

    shutil.rmtree(repository, ignore_errors=True)  # only these models, rendered by this code
    build("cpu", repository, only=models, with_steps=True)
    loopback = ("--http-address=127.0.0.1", "--grpc-address=127.0.0.1", "--metrics-address=127.0.0.1")
    log = folder / "triton.log"
    server = TritonServer(repository, Ports.free(), log_path=log, extra_args=loopback, admin_key=admin_key)
    with server:
        yield Watched(server)


@contextmanager
def baseline(name: str) -> Iterator[str]:
    """One original-style deployment (``perf.baseline``, azmlinfsrv defaults); yields its URL."""
    from perf.baseline import models
    from perf.baseline.server import SCRIPTS, AzmlServer

    model_dir = models.prepare(name, OUT_DIR / "baseline_models") if name in models.KINDS else None
    # its log holds a line per request (megabytes): scratch, not a record
    with AzmlServer(SCRIPTS[name], model_dir, log_path=OUT_DIR / f"azmlinfsrv_{name}.log") as server:
        yield server.url


@dataclass
class Run:
    """One benchmark run: what it measures, where it keeps records, the rows it found."""

    models: list[str]
    plan: Plan
    folder: Path
    rows: list[tuple[str, str, str, Point]]  # model, server, tool, what was measured

    def add(self, model: str, server: str, tool: str, point: Point) -> None:
        self.rows.append((model, server, tool, point))
        log.info("%s %s %s: %s", model, server, tool, point)

    def visit(self, user: str, host: str, users: int, stem: str, model: str = "") -> Point:
        env = tool_environment(PERF_MODEL=model, PERF_WORKLOAD=str(OUT_DIR / "inputs" / "workload.json"))
        return locust(user, host, users, self.plan.seconds, self.folder / stem, env)

    def sweep(self, model: str, url: str, stem: str, span: str | None = None) -> list[Point]:
        faq = model == FAQ
        data = OUT_DIR / "inputs" / ("faq.json" if faq else "image.json")
        span = span or (self.plan.faq_range if faq else self.plan.image_range)
        window = self.plan.window if faq else self.plan.image_window
        return perf_analyzer(model, url, data, span, self.folder / f"{stem}.csv", window)


def measure(run: Run, url: str | None, baselines: bool) -> None:
    """Every stage, in order; a dead server raises at the next check."""
    write_inputs(OUT_DIR / "inputs")
    with ExitStack() as stack:
        alive = (lambda: url) if url else stack.enter_context(triton(run.models, run.folder))
        for model in run.models:
            for point in run.sweep(model, alive(), f"pa_{model}"):
                run.add(model, "triton", "perf_analyzer", point)
            alive()
        if url:
            return  # locust and the baselines run against the server this run started
        host = f"http://{alive()}"
        for model in run.models:
            user, users = ("TritonFaqUser", 32) if model == FAQ else ("TritonImageUser", 8)
            run.add(model, "triton", "locust", run.visit(user, host, users, f"locust_{model}", model))
            alive()
        if RATIO_MODEL in run.models:  # 8x the users that saturate it: the queue policy sheds the excess
            overload = run.visit("TritonImageUser", host, 64, f"locust_{RATIO_MODEL}_overload", RATIO_MODEL)
            run.add(RATIO_MODEL, "triton, overload", "locust", overload)
            alive()
        if baselines and FAQ in run.models:
            faq_rounds(run, host, alive)
        if baselines and RATIO_MODEL in run.models:
            with baseline("resnet_torch") as at:
                point = run.visit("AzmlImageUser", at, 8, "locust_baseline_c")
                run.add(RATIO_MODEL, "azmlinfsrv (c): eager PyTorch", "locust", point)
        if RATIO_MODEL in run.models:
            raw_rounds(run, alive)


def faq_rounds(run: Run, host: str, alive: Callable[[], str]) -> None:
    """``faq_match`` against the original architecture's deployment (a), in interleaved rounds,
    and our own pipeline in scikit-learn under the same scoring server (b)."""
    with baseline("faq_pairwise") as pairwise, baseline("faq_sklearn") as sklearn:
        point = run.visit("AzmlFaqUser", sklearn, 4, "locust_baseline_b")
        run.add(FAQ, "azmlinfsrv (b): our pipeline in scikit-learn", "locust", point)

        def ours(number: int) -> float:
            point = run.visit("TritonFaqUser", host, 32, f"locust_round{number}_triton", FAQ)
            alive()
            return point.throughput

        def theirs(number: int) -> float:
            return run.visit("AzmlFaqUser", pairwise, 4, f"locust_round{number}_baseline_a").throughput

        for number, got in enumerate(interleave({"ours": ours, "theirs": theirs}, run.plan.rounds)):
            ratio = Point(number, got["ours"] / got["theirs"], 0, 0)
            run.add(FAQ, "round: Triton ÷ azmlinfsrv (a)", "locust", ratio)


def raw_rounds(run: Run, alive: Callable[[], str]) -> None:
    """The ResNet ensemble (JPEG in, top-5 out) against its own network in ONNX Runtime alone,
    in-process, in the spec's setting (threads, as many sessions as Triton has instances)."""
    from imaging.networks import NETWORKS
    from imaging.preprocess import preprocess_batch
    from imaging.samples import all_samples
    from perf import ort_raw
    from serving.catalog import models_by_name
    from serving.paths import ARTIFACTS_DIR

    net = models_by_name()[f"{RATIO_MODEL}_network"]
    images = [p.read_bytes() for p in all_samples().values()]
    inputs = preprocess_batch(images, NETWORKS[RATIO_MODEL].preprocess)
    threads = {"intra_op_threads": net.ort.intra_op_threads, "inter_op_threads": net.ort.inter_op_threads}

    def raw(number: int) -> float:
        onnx_file, seconds = ARTIFACTS_DIR / str(net.artifact), run.plan.seconds / 2
        return max(
            ort_raw.measure(
                onnx_file, inputs, sessions=net.instances.cpu, min_seconds=seconds, **threads
            ).values()
        )

    def ensemble(number: int) -> float:
        return run.sweep(RATIO_MODEL, alive(), f"pa_round{number}_{RATIO_MODEL}", span="8:8")[0].throughput

    for number, got in enumerate(interleave({"raw": raw, "ensemble": ensemble}, run.plan.rounds)):
        ratio = Point(number, got["ensemble"] / got["raw"], 0, 0)
        run.add(RATIO_MODEL, "round: ensemble ÷ raw ONNX Runtime", "perf_analyzer", ratio)


def summary(run: Run) -> str:
    """The generated table of a run: every measurement, then each A/B ratio's rounds and median."""
    lines = [
        "The judgement of the targets is in the `NOTE.md` beside the records.",
        "",
        "| model | server | tool | concurrency / users | req/s | p50 ms | p99 ms | failures | shed (503) |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    rounds: dict[str, list[float]] = {}
    for model, server, tool, p in run.rows:
        if server.startswith("round"):
            rounds.setdefault(f"{model}, {server.removeprefix('round: ')}", []).append(p.throughput)
            continue
        latency = f"{p.p50_ms:.1f} | {p.p99_ms:.1f}"
        figures = f"{p.concurrency:.0f} | {p.throughput:,.1f} | {latency} | {p.failures} | {p.shed}"
        lines.append(f"| {model} | {server} | {tool} | {figures} |")
    for what, ratios in rounds.items():
        each = ", ".join(f"{r:.2f}" for r in ratios)
        lines += ["", f"Interleaved rounds, {what}: median **{statistics.median(ratios):.2f}** ({each})."]
    return "\n".join(lines) + "\n"


def main(
    model: Annotated[list[str] | None, typer.Option(help="ensembles to measure (default: all)")] = None,
    quick: Annotated[bool, typer.Option(help="a short smoke run into perf/out/quick")] = False,
    url: Annotated[str | None, typer.Option(help="measure this server instead of starting one")] = None,
    baselines: Annotated[bool, typer.Option(help="also run the azmlinfsrv baselines")] = True,
    out: Annotated[Path | None, typer.Option(help="records folder (default perf/results/<date>)")] = None,
) -> None:
    """Measure, keep the tools' records, write the summary table."""
    from imaging.specs import enabled_networks

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    folder = out or (OUT_DIR / "quick" if quick else RESULTS_DIR / datetime.now(UTC).strftime("%Y-%m-%d"))
    folder.mkdir(parents=True, exist_ok=True)
    run = Run(model or [FAQ, *(n.name for n in enabled_networks())], QUICK if quick else Plan(), folder, [])
    started = time.perf_counter()
    try:
        measure(run, url, baselines)
    except BenchmarkError as exc:
        typer.echo(f"benchmark FAILED: {exc}", err=True)
        raise typer.Exit(1) from None
    text = publish(folder, SECTION, summary(run))
    typer.echo(f"{text}\n{time.perf_counter() - started:.0f} s; records in {folder}")


if __name__ == "__main__":
    typer.run(main)
