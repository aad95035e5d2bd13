"""Measure every served model under load, side by side with the Azure ML scoring server.

    python -m perf.run_all                 # full run (`make perf`), writes perf/RESULTS.md
    python -m perf.run_all --quick         # smoke run, results under perf/out/quick/
    python -m perf.run_all --model faq_match --no-baselines
    python -m perf.run_all --url gpu-host:8000 --no-baselines   # an already running server

One run, one machine, one after another: build a repository with the chosen models, start
Triton (loopback, free ports), then per model a perf_analyzer concurrency sweep, the raw
ONNX Runtime loop (image ensembles) and locust at a few user counts; stop Triton; then each
baseline ``score.py`` in ``azmlinfsrv`` under the same locust load. Results: raw CSV/logs in
``perf/out/``, ``perf/out/run.json``, PNGs in ``perf/plots/`` and the ``## Real-time serving``
section of ``perf/RESULTS.md``.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
import os
import shlex
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import typer

from perf import (
    OUT_DIR,
    PLOTS_DIR,
    RESULTS_MD,
    machine,
    ort_raw,
    payloads,
    perf_analyzer,
    report,
    servers,
    workloads,
)
from perf.baseline import models as baseline_models
from perf.baseline.server import SCRIPTS, AzmlServer
from perf.locust_runner import LocustError, LocustRun, check_target, run_locust
from perf.perf_analyzer import PerfAnalyzerRun
from perf.report import RunRecord
from perf.results import LoadPoint, save_points
from serving.triton import TritonServer, crash_lines, describe_exit

log = logging.getLogger("perf.run_all")

FAQ_MODELS = ("faq_match",)
IMAGE_MODELS = ("resnet152_pytorch", "resnet152_tensorflow", "efficientnet_lite0")
DEFAULT_MODELS = (*FAQ_MODELS, *IMAGE_MODELS)
# Triton model -> baselines measured with it (perf/baseline/server.py SCRIPTS keys)
BASELINES = {"faq_match": ("faq_pairwise", "faq_sklearn"), "resnet152_pytorch": ("resnet_torch",)}


@dataclass(frozen=True)
class Plan:
    """How hard and how long to push each kind of model."""

    faq_concurrency: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
    image_concurrency: tuple[int, ...] = (1, 2, 4, 8, 16)
    faq_users: tuple[int, ...] = (1, 8, 32)
    image_users: tuple[int, ...] = (1, 8)
    faq_baseline_users: tuple[int, ...] = (1, 4)
    image_baseline_users: tuple[int, ...] = (1, 2)
    locust_seconds: int = 20
    faq_window_requests: int = 1000
    image_window_requests: int = 24
    max_trials: int = 6
    raw_batches: tuple[int, ...] = (1, 4, 8)
    raw_seconds: float = 12.0
    paired_rounds: int = 5  # interleaved ensemble / raw rounds for the 85% target
    paired_batches: tuple[int, ...] = (4, 8)
    paired_concurrency: tuple[int, ...] = (8, 16)
    paired_seconds: float = 8.0
    paired_window_requests: int = 48  # ~4 s per window: in-flight requests at the edges matter less
    faq_paired_rounds: int = 5  # calm interleaved Triton / baseline (a) rounds for the 20x target
    faq_paired_max_rounds: int = 10  # rounds to try for them on a noisy host (~1 min each)
    faq_paired_seconds: int = 15
    pa_timeout_s: float = 240.0
    pairwise_options: dict[str, int] = field(default_factory=dict)

    @classmethod
    def quick(cls) -> Plan:
        return cls(
            faq_concurrency=(1, 8),
            image_concurrency=(1, 4),
            faq_users=(8,),
            image_users=(4,),
            faq_baseline_users=(2,),
            image_baseline_users=(1,),
            locust_seconds=5,
            faq_window_requests=200,
            image_window_requests=6,
            max_trials=3,
            raw_batches=(1, 4),
            raw_seconds=3.0,
            paired_rounds=1,
            paired_batches=(4,),
            paired_concurrency=(8,),
            paired_seconds=3.0,
            paired_window_requests=6,
            faq_paired_rounds=1,
            faq_paired_max_rounds=2,
            faq_paired_seconds=4,
            pa_timeout_s=120.0,
            # a small pairwise model: trains in seconds; its speed is NOT the original's
            pairwise_options={"max_features": 100, "max_iter": 10},
        )


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _size(path: Path) -> int:
    return path.stat().st_size if path.exists() else 0


def _read_from(path: Path, offset: int) -> str:
    """What a log gained after ``offset`` (the server appends every start to one file)."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")
    except OSError:
        return ""


class Runner:
    def __init__(self, record: RunRecord, plan: Plan, out_dir: Path) -> None:
        self.record = record
        self.plan = plan
        self.out_dir = out_dir
        self.server: TritonServer | None = None  # the Triton this run started, if any
        self.url = ""

    def add(self, points: list[LoadPoint] | LoadPoint | None) -> None:
        if points is None:
            return
        self.record.points.extend(points if isinstance(points, list) else [points])
        save_points(self.record.points, self.out_dir / "points.jsonl")  # survive an interruption

    def stage(self, name: str, measure: Callable[[str], object], attempts: int = 2) -> None:
        """Run one measurement against Triton; if Triton died during it, restart it and measure again.

        On this shared VM the Python backend has judged a stub "not healthy" under load (most
        likely during a host stall of a second or more: its checks use 1 s wall-clock timeouts),
        and ``tritonserver`` then crashed (SIGSEGV, then ``boost::interprocess::lock_exception``;
        docs/perf.md, "Reading the numbers"). Without this, every later stage of a
        half-hour run would measure a dead server. The points of a failed attempt are dropped
        (they measured a dying server) and the report's notes say what happened.
        """
        for attempt in range(1, attempts + 1):
            mark = len(self.record.points)
            log_at = _size(self.server.log_path) if self.server else 0
            measure(self.url)
            code = self.server.exit_code() if self.server else None
            if self.server is None or code is None:
                return
            del self.record.points[mark:]
            save_points(self.record.points, self.out_dir / "points.jsonl")
            why = "; ".join(crash_lines(_read_from(self.server.log_path, log_at))) or "no message in its log"
            note = (
                f"Triton died during {name} at {_now()} ({describe_exit(code)}: {why}); "
                "the figures of that attempt were dropped"
            )
            retry = attempt < attempts
            if retry:
                note += "; Triton was restarted and the stage measured again."
            else:
                note += "; the stage has no figures. Triton was restarted for the stages after it."
            log.warning(note)
            self.record.notes.append(note)
            self.server.restart(timeout=900)
            self.url = self.server.http_url

    def perf_analyzer(self, model: str, url: str, data: Path, image: bool, label: str = "") -> None:
        plan = self.plan
        run = PerfAnalyzerRun(
            model=model,
            input_data=data,
            url=url,
            concurrency=plan.image_concurrency if image else plan.faq_concurrency,
            measurement_request_count=plan.image_window_requests if image else plan.faq_window_requests,
            max_trials=plan.max_trials,
            timeout_s=plan.pa_timeout_s,
            label=label,
        )
        self.record.commands.append(run.display_command(self.out_dir))
        points = perf_analyzer.run_sweep(run, self.out_dir)
        if not points:
            self.record.notes.append(
                f"perf_analyzer produced no result for `{model}` (see perf/out/pa_{model}_*.log)"
            )
        self.add(points)

    def locust(self, run: LocustRun) -> None:
        try:
            check_target(run.host, run.allow_remote)
        except LocustError as exc:
            self.record.notes.append(f"locust skipped: {exc}")
            return
        self.record.commands.append(run.display_command())
        point = run_locust(run, self.out_dir)
        if point is None:
            self.record.notes.append(
                f"locust produced no result for {run.server} `{run.model}` with {run.users} users"
            )
        self.add(point)


def run(
    models: list[str],
    plan: Plan,
    out_dir: Path,
    results_md: Path,
    plots_dir: Path,
    url: str | None = None,
    baselines: bool = True,
    allow_remote: bool = False,
    invocation: str = "",
    tune: bool = False,
) -> RunRecord:
    out_dir.mkdir(parents=True, exist_ok=True)
    record = RunRecord(
        started=_now(),
        machine=machine.describe(),
        load_before=machine.load_average(),
        invocation=invocation,
    )
    runner = Runner(record, plan, out_dir)
    # fail fast if perf_analyzer cannot run; record its version
    record.machine["versions"]["perf_analyzer"] = perf_analyzer.version().removeprefix(
        "Perf Analyzer Version "
    )
    specs = servers.catalog()
    unknown = [m for m in models if m not in specs]
    if unknown:
        raise typer.BadParameter(f"unknown models {unknown}; served: {', '.join(sorted(specs))}")
    faq = [m for m in models if servers.input_tensor(m, specs) == "TEXT"]
    images = [m for m in models if m not in faq]

    questions = workloads.faq_questions()
    photos = workloads.image_files()
    workload = workloads.write_workload(out_dir / "workload.json", questions, photos)
    wl = payloads.load_workload(workload)
    pa_inputs = workloads.write_pa_inputs(out_dir, questions if faq else [], photos if images else [])
    record.notes.append(
        f"Inputs: {len(questions)} FAQ test-split questions; {len(photos)} photos shipped in installed "
        f"packages ({', '.join(p.name for p in photos)}), sent as their encoded bytes."
    )

    # Train (or reuse) the baseline FAQ models before any measurement: minutes of CPU.
    wanted_baselines = [b for m in models for b in BASELINES.get(m, ())] if baselines else []
    model_dirs: dict[str, Path] = {}
    for name in wanted_baselines:
        if name in baseline_models.KINDS:
            options = plan.pairwise_options if name == "faq_pairwise" else {}
            model_dirs[name] = baseline_models.prepare(name, out_dir / "baseline_models", **options)
    if plan.pairwise_options and "faq_pairwise" in wanted_baselines:
        record.notes.append(
            f"Quick run: baseline (a) used a reduced pairwise model {plan.pairwise_options}; "
            "its speed is not the original's."
        )

    # ---------------------------------------------------------------- Triton
    served = servers.closure(models, specs)
    record.settings = servers.settings(served, specs)
    for name in images:
        step = servers.onnx_step(name, specs)
        if step is not None:
            record.raw_network[name] = step.name
    server = None
    url_given = url
    if url is None:
        repository = out_dir / "model_repository"
        servers.build_repository(models, repository)
        server = servers.triton(repository, out_dir / "triton.log")
        log.info("starting Triton with %s", ", ".join(served))
        server.start(timeout=900)
        url = server.http_url
        record.commands.insert(0, shlex.join(server.command()))
    record.target_url = url
    if url_given is not None:
        record.notes.append(
            f"Triton at {url_given} was not started by this run: the served settings listed below are "
            "the local specs, and the raw ONNX Runtime loop (local CPU) is skipped."
        )
    runner.server, runner.url = server, url
    try:
        for model in models:
            image = model in images
            data = pa_inputs["image" if image else "faq"]
            runner.stage(
                f"the perf_analyzer sweep of `{model}`",
                functools.partial(runner.perf_analyzer, model, data=data, image=image),
            )
            if image and model in record.raw_network and url_given is None:
                raw_points = _raw_ort(record.raw_network[model], specs, photos, plan)
                runner.add(raw_points)
                record.commands.append(
                    f"perf.ort_raw.measure(build/artifacts/{specs[record.raw_network[model]].artifact}, "
                    f"batch_sizes={plan.raw_batches})  # in-process: the spec's threads x instances, "
                    "and 1 session x all cores"
                )
            if (
                image
                and model in report.IMAGE_TARGET_MODELS
                and model in record.raw_network
                and url_given is None
            ):
                runner.stage(
                    f"the interleaved `{model}` / raw ONNX Runtime rounds",
                    functools.partial(
                        _paired, runner, model, record.raw_network[model], specs, photos, data=data
                    ),
                )
            user_runs = [
                ("TritonImageUser" if image else "TritonFaqUser", "", users)
                for users in (plan.image_users if image else plan.faq_users)
            ]
            if not image:  # the same questions as plain JSON, at the highest user count
                user_runs.append(("TritonFaqJsonUser", "json", max(plan.faq_users)))
            for user_class, label, users in user_runs:
                runner.stage(
                    f"locust {user_class} on `{model}` with {users} users",
                    functools.partial(
                        _triton_locust, runner, user_class, model, users, workload, label, allow_remote
                    ),
                )
        if "faq_match" in models and "faq_pairwise" in model_dirs and url_given is None:
            runner.stage(
                "the interleaved `faq_match` / baseline (a) rounds",
                lambda u: _paired_faq(runner, _http(u), model_dirs["faq_pairwise"], wl, workload),
            )
    finally:
        if runner.server is not None:
            runner.server.stop()

    # ---------------------------------------------------------------- baselines
    for name in wanted_baselines:
        image = name == "resnet_torch"
        for config in baseline_configs(image):
            _measure_baseline(runner, name, config, model_dirs.get(name), image, wl, workload)

    # ---------------------------------------------------------------- tuning (optional, long)
    if tune and url_given is None:
        from perf import tuning

        for model in [m for m in models if m in ("faq_match", "resnet152_pytorch")]:
            image = model in images
            variants = tuning.image_variants(model) if image else tuning.faq_variants(model)
            levels = (4, 8) if image else (8, 16, 32)
            raw = tuning.run_variants(
                model, variants, levels, out_dir / "tuning", window_requests=16 if image else 1000, rounds=2
            )
            runner.add(tuning.medians(raw))
            record.commands.append(f"python -m perf.tuning --model {model} --rounds 2")

    record.finished = _now()
    record.load_after = machine.load_average()
    record.notes.append(
        "locust (one Python process, gevent) shares the 2 cores with the server under test: at Triton's "
        "rates it takes about a fifth of the machine, so Triton's locust figures are lower bounds; "
        "perf_analyzer (C++) measures Triton's capacity. The baselines are far below locust's limit. "
        "Each user sends through its own geventhttpclient connection and reports to locust's "
        "statistics itself, which costs locust about half the CPU per request of `FastHttpUser`'s "
        'session (docs/perf.md, "The load generator"). '
        "Every locust request says `Accept-Encoding: identity`: locust's fast client asks for gzip by "
        "default, Triton then compresses each answer (azmlinfsrv never does), which cost Triton about "
        "a quarter of its locust throughput in earlier runs. `faq_match` users send what "
        "`tritonclient.http` sends (binary tensors); the row labelled `json` sends the same questions "
        "as plain KServe v2 JSON."
    )
    if record.machine.get("gpu", "none") == "none":
        record.notes.append(
            "No GPU on this machine. The same harness measures a GPU server: render it with "
            "`make build-gpu`, run the official container, then "
            "`python -m perf.run_all --url HOST:8000 --no-baselines` (perf_analyzer accepts any URL; "
            "locust needs `--allow-remote` for a non-loopback host) and add the figures with the GPU model."
        )
    (out_dir / "run.json").write_text(record.to_json())
    report.publish(record, results_md, plots_dir)
    return record


@dataclass(frozen=True)
class BaselineConfig:
    """How a baseline is deployed: gunicorn workers and thread settings of each worker."""

    label: str
    workers: int
    env: dict[str, str] = field(default_factory=dict)
    description: str = ""


def baseline_configs(image: bool, cores: int | None = None) -> list[BaselineConfig]:
    """The deployments each baseline is measured in; the targets use the faster.

    ``default`` is what ``azmlinfsrv`` does out of the box: one worker, the libraries' own
    threading (OpenMP over every core for the trees of (a) and for PyTorch). ``tuned`` is one
    gunicorn worker per core and one thread per worker (``OMP_NUM_THREADS=1``): on a busy
    2-core machine OpenMP threads spin against each other, and one pairwise request took
    ~113 ms instead of ~11 ms with one thread (measured in-process). The comparison is with the
    baseline at its best, not at its worst; ``tuned`` mirrors Triton's 2 instances x 1 thread.
    """
    cores = cores or os.cpu_count() or 1
    configs = [BaselineConfig("default", 1, {}, "azmlinfsrv defaults: 1 worker, default threading")]
    if cores > 1:
        one = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        if image:
            one["BASELINE_TORCH_THREADS"] = "1"  # perf/baseline/score_resnet_torch.py
        configs.append(BaselineConfig("tuned", cores, one, f"{cores} workers x 1 thread (OMP_NUM_THREADS=1)"))
    return configs


def _start_baseline(
    runner: Runner,
    name: str,
    config: BaselineConfig,
    model_dir: Path | None,
    image: bool,
    wl: dict,
    paired: bool = False,
) -> AzmlServer | None:
    """``azmlinfsrv`` serving baseline ``name`` in ``config``, started and warmed up; None (with a
    note) if it did not start: one broken baseline must not lose the rest of the run."""
    suffix = "_paired" if paired else ""
    azml = AzmlServer(
        SCRIPTS[name],
        model_dir,
        workers=config.workers,
        env=config.env,
        log_path=runner.out_dir / f"azml_{name}_{config.label}{suffix}.log",
    )
    log.info("starting azmlinfsrv for %s (%s)", name, config.label)
    try:
        azml.start()
    except Exception as exc:
        where = " for the paired rounds" if paired else ""
        runner.record.notes.append(f"baseline {name} ({config.label}) did not start{where}: {exc}")
        return None
    try:
        kind = "image" if image else "faq"
        warmed = payloads.warm_up(f"{azml.url}/score", payloads.azml_bodies(kind, wl), 4 if image else 50)
        log.info("%s: %d warm-up requests answered", name, warmed)
    except BaseException:
        azml.stop()
        raise
    return azml


def _measure_baseline(
    runner: Runner,
    name: str,
    config: BaselineConfig,
    model_dir: Path | None,
    image: bool,
    wl: dict,
    workload: Path,
) -> None:
    record, plan = runner.record, runner.plan
    azml = _start_baseline(runner, name, config, model_dir, image, wl)
    if azml is None:
        return
    env = " ".join(f"{k}={v}" for k, v in config.env.items())
    record.commands.append(f"{env + ' ' if env else ''}{azml.display_command()}")
    record.settings[f"azmlinfsrv {name} ({config.label})"] = (
        f"{config.description}; sync gunicorn workers, loopback"
    )
    try:
        for users in plan.image_baseline_users if image else plan.faq_baseline_users:
            runner.locust(
                LocustRun(
                    "AzmlImageUser" if image else "AzmlFaqUser",
                    azml.url,
                    name,
                    "azmlinfsrv",
                    users=users,
                    run_time_s=plan.locust_seconds,
                    workload=workload,
                    label=config.label,
                )
            )
    finally:
        azml.stop()


def _http(url: str) -> str:
    return url if "://" in url else f"http://{url}"


def _triton_locust(
    runner: Runner,
    user_class: str,
    model: str,
    users: int,
    workload: Path,
    label: str,
    allow_remote: bool,
    url: str,
) -> None:
    runner.locust(
        LocustRun(
            user_class,
            _http(url),
            model,
            "triton",
            users=users,
            run_time_s=runner.plan.locust_seconds,
            workload=workload,
            triton_model=model,
            label=label,
            allow_remote=allow_remote,
        )
    )


def _paired_faq(runner: Runner, triton_url: str, model_dir: Path, wl: dict, workload: Path) -> None:
    """``faq_match`` and baseline (a) in each deployment, measured in alternation.

    The 20x target divides two throughputs that the main sequence measures a quarter of an
    hour apart, and this host's speed drifts by ±15% in that time. Here every deployment of
    (a) is up next to Triton (idle servers cost memory, not CPU) and locust visits them in
    turn, round after round, in alternating order; the report divides the two figures of each
    round and judges the median of the calm rounds (:func:`perf.report.calm`). Rounds are
    added until ``plan.faq_paired_rounds`` of them were calm, or ``plan.faq_paired_max_rounds``
    were run: whether a round counts depends on the host's steal only, never on its ratio.
    """
    plan, record = runner.plan, runner.record
    up: list[tuple[str, AzmlServer]] = []
    try:
        for config in baseline_configs(image=False):
            azml = _start_baseline(runner, "faq_pairwise", config, model_dir, False, wl, paired=True)
            if azml is not None:  # without it, the sequential measurement still stands
                up.append((config.label, azml))
        if not up:
            return
        calm_rounds, index = 0, 0
        while calm_rounds < plan.faq_paired_rounds and index < plan.faq_paired_max_rounds:
            runs = [
                LocustRun(
                    "TritonFaqUser",
                    triton_url,
                    "faq_match",
                    "triton",
                    users=max(plan.faq_users),
                    run_time_s=plan.faq_paired_seconds,
                    workload=workload,
                    triton_model="faq_match",
                    label=report.PAIRED,
                )
            ] + [
                LocustRun(
                    "AzmlFaqUser",
                    azml.url,
                    "faq_pairwise",
                    "azmlinfsrv",
                    users=max(plan.faq_baseline_users),
                    run_time_s=plan.faq_paired_seconds,
                    workload=workload,
                    label=f"{report.PAIRED}-{label}",
                )
                for label, azml in up
            ]
            visits = []
            for run in runs if index % 2 == 0 else runs[::-1]:
                if index == 0:
                    note = (
                        f"  # interleaved, until {plan.faq_paired_rounds} calm rounds "
                        f"(at most {plan.faq_paired_max_rounds} rounds)"
                    )
                    record.commands.append(run.display_command() + note)
                point = run_locust(run, runner.out_dir / "paired_faq" / f"r{index}")
                if point is not None:
                    visits.append(point)
                    runner.add(dataclasses.replace(point, extra={**point.extra, "round": index}))
            # steal unknown (no /proc/stat): every complete round counts
            if len(visits) == len(runs) and report.calm(*visits) is not False:
                calm_rounds += 1
            index += 1
    finally:
        for _, azml in up:
            azml.stop()


def _paired(
    runner: Runner, model: str, network: str, specs: dict, photos: list[Path], url: str, *, data: Path
) -> None:
    """The ensemble and its raw network measured back to back, ``plan.paired_rounds`` times.

    The 85% target divides two throughputs; measured minutes apart on a shared machine they
    see different background load. Alternating short measurements of both lets every round's
    ratio see the same load, and the median of the rounds is the figure reported.

    Every round measures every candidate of both sides: the raw network at each batch size in
    both thread settings, the ensemble at each concurrency. The report then picks each side's
    best candidate by its median over the rounds and divides those two, round by round
    (:func:`perf.report.paired_rounds`): one number per side per round, never the best of
    several noisy draws on one side only.
    """
    plan = runner.plan
    for index in range(plan.paired_rounds):
        raw = _raw_ort(network, specs, photos, plan, batches=plan.paired_batches, seconds=plan.paired_seconds)
        runner.add(
            [
                dataclasses.replace(p, label=f"{report.PAIRED}; {p.label}", extra={**p.extra, "round": index})
                for p in raw
            ]
        )
        run = PerfAnalyzerRun(
            model=model,
            input_data=data,
            url=url,
            concurrency=plan.paired_concurrency,
            measurement_request_count=plan.paired_window_requests,
            stability_percentage=perf_analyzer.LENIENT_STABILITY,  # three windows, averaged
            max_trials=perf_analyzer.LENIENT_TRIALS,
            lenient_fallback=False,
            timeout_s=plan.pa_timeout_s,
            label=f"paired_r{index}",
        )
        if index == 0:
            runner.record.commands.append(
                run.display_command(runner.out_dir) + f"  # x{plan.paired_rounds}, interleaved"
            )
        found = perf_analyzer.run_sweep(run, runner.out_dir)  # one perf_analyzer run per level
        runner.add(
            [dataclasses.replace(p, label=report.PAIRED, extra={**p.extra, "round": index}) for p in found]
        )


def _raw_ort(
    network: str,
    specs: dict,
    photos: list[Path],
    plan: Plan,
    batches: tuple[int, ...] | None = None,
    seconds: float | None = None,
) -> list[LoadPoint]:
    """Raw ONNX Runtime on the ensemble's own ONNX file, with real preprocessed photos.

    Two settings, and the target takes the better: the spec's (its threads, as many sessions
    as the spec has instances, running at once) and one session with every core as intra-op
    threads, ONNX Runtime's own best use of the machine. The ensemble is held to the faster.
    """
    import numpy as np

    from imaging.networks import NETWORKS
    from imaging.preprocess import preprocess_bytes
    from serving.paths import ARTIFACTS_DIR

    spec = specs[network]
    ensemble = network.removesuffix("_network")
    recipe = NETWORKS[ensemble].preprocess if ensemble in NETWORKS else None
    inputs = None
    if recipe is not None:
        inputs = np.stack([preprocess_bytes(p.read_bytes(), recipe) for p in photos])
    cores = os.cpu_count() or 1
    settings = [(spec.ort.intra_op_threads, spec.ort.inter_op_threads, spec.instances.cpu)]
    if (cores, 1, 1) not in settings:
        settings.append((cores, 1, 1))
    points: list[LoadPoint] = []
    for intra, inter, sessions in settings:
        points += ort_raw.measure(
            ARTIFACTS_DIR / spec.artifact,
            network,
            batches or plan.raw_batches,
            inputs=inputs,
            intra_op_threads=intra,
            inter_op_threads=inter,
            sessions=sessions,
            min_seconds=seconds or plan.raw_seconds,
        )
    return points


app = typer.Typer(add_completion=False, help=__doc__, rich_markup_mode=None)


@app.command()
def main(
    model: Annotated[
        list[str] | None, typer.Option(help="models to measure (repeatable); default: every ensemble")
    ] = None,
    quick: Annotated[
        bool, typer.Option(help="smoke run: fewer levels, 5 s locust, results in perf/out/quick")
    ] = False,
    url: Annotated[
        str | None, typer.Option(help="measure this running Triton instead of starting one")
    ] = None,
    baselines: Annotated[bool, typer.Option(help="also measure the azmlinfsrv baselines")] = True,
    locust_seconds: Annotated[int | None, typer.Option(help="duration of each locust run")] = None,
    allow_remote: Annotated[bool, typer.Option(help="let locust target a non-loopback --url")] = False,
    tune: Annotated[bool, typer.Option(help="also measure the tuning variants (adds ~30 min)")] = False,
    results: Annotated[Path | None, typer.Option(help="markdown to update")] = None,
    plots: Annotated[Path | None, typer.Option(help="folder for the PNGs")] = None,
    out: Annotated[Path | None, typer.Option(help="raw output folder")] = None,
) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    from perf.tuning import exit_on_sigterm

    exit_on_sigterm()  # a killed run still stops its Triton and azmlinfsrv process groups
    plan = Plan.quick() if quick else Plan()
    if locust_seconds:
        plan = Plan(**{**plan.__dict__, "locust_seconds": locust_seconds})
    out_dir = (out or (OUT_DIR / "quick" if quick else OUT_DIR)).resolve()
    results_md = results or (out_dir / "RESULTS.md" if quick else RESULTS_MD)
    plots_dir = plots or (out_dir / "plots" if quick else PLOTS_DIR)
    invocation = "python -m perf.run_all" + (" " + shlex.join(sys.argv[1:]) if sys.argv[1:] else "")
    record = run(
        list(model or DEFAULT_MODELS),
        plan,
        out_dir,
        results_md,
        plots_dir,
        url=url,
        baselines=baselines,
        allow_remote=allow_remote,
        invocation=invocation,
        tune=tune,
    )
    for target in report.targets(record):
        verdict = {True: "MET", False: "NOT MET", None: "-"}[target.met]
        typer.echo(f"{verdict:8} {target.name}: {target.measured}")
    typer.echo(f"wrote {results_md}")


if __name__ == "__main__":
    app()
