"""Soak: the served stack under steady mixed load for a long time, with faults injected.

    python -m perf.soak                    # make perf-soak: 30 minutes, a fault every 4 minutes
    python -m perf.soak --minutes 5 --fault-every 60 --out perf/out/soak   # a short look

``python -m serving serve`` on free ports with ``faq_match`` and ``efficientnet_lite0``, loaded at
about half its capacity from niced client processes through ``serving.client`` (with retries),
a stub stalled, a stub killed, the server killed or frozen in turn (``serving.faults``);
records and goals: docs/perf.md, "Soak".
"""

from __future__ import annotations

import csv
import math
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from perf import OUT_DIR, publish, records_folder
from serving.client import RETRYABLE, ClientError, Endpoint, infer
from serving.faults import FAULTS, inject
from serving.health import healthy_after
from serving.paths import REPO_ROOT, read_state
from serving.triton import Ports, TritonServer, free_ports, memory

SECTION = "## Soak"
MODELS = ["faq_match", "efficientnet_lite0"]
RUN = OUT_DIR / "soak_run"  # the served stack's state (with its admin key) and logs: scratch
PER_PROCESS = 150  # requests/s one client process sends (one synchronous client reaches ~270/s)
Counts = dict[tuple[int, str], list[int]]  # (minute, model) -> sent, first errors, failed


def load(
    port: int, model: str, inputs: list, output: str, per_second: float, started: float, stop, done
) -> None:
    """One client process: requests at a fixed rate; an error of the first attempt is counted,
    then retried. Puts its counts on ``done`` when ``stop`` is set. Niced: on a machine it shares
    with the server, the load must not starve a stub past Triton's 1 s health deadline."""
    os.nice(10)
    endpoint, counts = Endpoint(f"127.0.0.1:{port}"), {}
    client, n = endpoint.client(), 0

    def count(column: int) -> None:  # CLOCK_MONOTONIC is one clock for every process
        counts.setdefault((int((time.monotonic() - started) // 60), model), [0, 0, 0])[column] += 1

    next_at = time.monotonic()
    while not stop.is_set():
        next_at += 1 / per_second
        time.sleep(max(0.0, next_at - time.monotonic()))
        count(0)
        data, n = inputs[n % len(inputs)], n + 1
        try:
            infer(endpoint, model, data, [output], client=client, timeout_s=30)
        except RETRYABLE:
            count(1)
            try:
                infer(endpoint, model, data, [output], timeout_s=30, retry_s=30)
            except ClientError as exc:
                count(2)
                typer.echo(f"{model} failed after retries: {type(exc).__name__}: {exc}", err=True)
        except ClientError as exc:
            count(2)
            typer.echo(f"{model} failed: {type(exc).__name__}: {exc}", err=True)
    done.put(counts)


def state() -> dict:
    """The serve command's state file (replaced in one step at every restart)."""
    running = read_state(RUN / "triton.json")
    if running is None:
        raise RuntimeError(f"no state in {RUN}: the served stack is gone")
    return running


def server(running: dict) -> TritonServer:
    """A handle on the server ``running`` (a state) describes: its address, admin key and stubs
    (by shared-memory prefix)."""
    return TritonServer(REPO_ROOT, Ports(running["triton_http"]), admin_key=running["admin_key"])


def address() -> tuple[str, str]:
    """The server's HTTP address and admin key, for the deep check."""
    running = server(state())
    return running.http_url, str(running.admin_key)


def main(
    minutes: Annotated[float, typer.Option(help="how long the load runs")] = 30,
    fault_every: Annotated[float, typer.Option(help="seconds between injected faults")] = 240,
    faq_rate: Annotated[float, typer.Option(help="questions per second")] = 800,
    image_rate: Annotated[float, typer.Option(help="photos per second")] = 22,
    out: Annotated[
        Path | None, typer.Option(help="records folder (default perf/results/<date>/soak)")
    ] = None,
) -> None:
    """Serve, load, inject faults, record; exits 1 when a goal is missed."""
    from export.build_repository import build
    from faq.data import load_dataset, split_duplicates
    from faq.specs import FAQ_ID, TEXT
    from imaging.samples import all_samples
    from imaging.specs import CLASS_ID, IMAGE

    folder, repository = records_folder(out, "soak"), OUT_DIR / "soak_repository"
    build("cpu", repository, only=MODELS, with_steps=True)
    ports, flags = Ports(*free_ports(3)), ["--repository", str(repository)]
    for name, port in ports.__dict__.items():
        flags += [f"--{name}-port", str(port)]
    shutil.rmtree(RUN, ignore_errors=True)
    env = {**os.environ, "TRITON_STACK_RUN_DIR": str(RUN)}
    serving = subprocess.Popen(
        [sys.executable, "-m", "serving", "serve", *flags], env=env, cwd=REPO_ROOT, start_new_session=True
    )
    counts: Counts = {}
    faults: list[dict] = []
    samples: list[dict] = []
    servers: dict[int, int] = {}  # each server process seen -> when first seen (s)
    try:
        while not (RUN / "triton.json").exists():
            if serving.poll() is not None:
                raise typer.Exit(1)
            time.sleep(1)
        texts = split_duplicates(load_dataset())[1]["text"]
        questions = [{TEXT: np.array([[str(q).encode()]], dtype=object)} for q in texts]
        photos = [{IMAGE: np.array([[p.read_bytes()]], dtype=object)} for p in all_samples().values()]
        loads = [(MODELS[0], questions, FAQ_ID, faq_rate), (MODELS[1], photos, CLASS_ID, image_rate)]
        spawn, started = multiprocessing.get_context("spawn"), time.monotonic()
        stop, done, clients = spawn.Event(), spawn.Queue(), []
        for model, inputs, output, rate in loads:
            share = math.ceil(rate / PER_PROCESS)
            args = (ports.http, model, inputs, output, rate / share, started, stop, done)
            clients += [spawn.Process(target=load, args=args, daemon=True) for _ in range(share)]
        for client in clients:
            client.start()
        end, next_fault, next_sample = started + 60 * minutes, started + fault_every, started
        while (now := time.monotonic()) < end:
            if now >= next_sample:  # resident memory of the server, each stub and the front door
                running = state()
                servers.setdefault(running["triton_pid"], round(now - started))
                samples.append({"s": round(now - started), **memory(running, server(running).stubs())})
                next_sample += 10
            if now >= next_fault and end - now > min(60, fault_every):  # time left to recover
                kind = FAULTS[len(faults) % len(FAULTS)]
                running = state()
                target = inject(kind, server(running).stubs(), running["triton_pid"], len(faults))
                time.sleep(1)  # for the fault to show before the check
                took = healthy_after(address, 300, now)
                faults.append(
                    {"s": round(now - started), "fault": kind, "target": target, "recovered_s": took}
                )
                typer.echo(f"fault {faults[-1]}")
                next_fault += fault_every
            time.sleep(1)
        stop.set()
        elapsed = time.monotonic() - started
        for _ in clients:
            for key, row in done.get(timeout=120).items():
                counts[key] = [a + b for a, b in zip(counts.get(key, [0, 0, 0]), row, strict=True)]
    finally:
        os.killpg(serving.pid, signal.SIGTERM)
        serving.wait(timeout=120)
    write(folder, counts, elapsed, list(servers.values())[1:], faults, samples)


def _csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, list(dict.fromkeys(k for row in rows for k in row)))
        writer.writeheader()
        writer.writerows(rows)


def growth(samples: list[dict], restarts: list[int]) -> float:
    """The largest growth of total resident memory over a stretch between server restarts, from
    2 minutes into the stretch (warm-up) to its end."""
    grown = []
    for start, stop in zip([0, *restarts], [*restarts, 1 << 30], strict=True):
        total = [sum(v for k, v in s.items() if k != "s") for s in samples if start + 120 <= s["s"] < stop]
        grown += [(total[-1] - total[0]) / total[0]] if len(total) > 1 else []
    return max(grown, default=float("nan"))


def write(
    folder: Path, counts: Counts, elapsed: float, restarts: list[int], faults: list[dict], samples: list[dict]
) -> None:
    """The records (CSV), the generated section of perf/RESULTS.md, and the verdict."""
    _csv(folder / "faults.csv", faults)
    _csv(folder / "memory.csv", samples)
    columns = ("sent", "errors_first_attempt", "failed_after_retries")
    rows = [
        {"minute": m, "model": model, **dict(zip(columns, row, strict=True))}
        for (m, model), row in sorted(counts.items())
    ]
    _csv(folder / "requests.csv", rows)
    sent, first, failed = (sum(r[k] for r in rows) for k in columns)
    grew = growth(samples, restarts)
    # a restart is first seen at the sample after its fault healed
    unprovoked = [
        r for r in restarts if not any(0 <= r - f["s"] <= (f["recovered_s"] or 0) + 40 for f in faults)
    ]
    models = sorted({model for _, model in counts})
    per_model = {m: sum(row[0] for (_, model), row in counts.items() if model == m) for m in models}
    rates = ", ".join(f"{m} {n / max(elapsed, 1):,.0f}/s" for m, n in per_model.items())
    each = ", ".join(f"{f['fault']} {f['recovered_s'] or float('nan'):.1f} s" for f in faults)
    text = publish(
        folder,
        SECTION,
        f"Requests {sent:,} ({rates}); errors on a first attempt {first:,}; "
        f"**failed after retries {failed:,}**. "
        f"Faults {len(faults)}, recovered (deep check passing again) after: {each or 'none injected'}. "
        f"Server restarts {len(restarts)}, {len(unprovoked)} of them not after an injected fault. "
        f"Largest growth of resident memory after warm-up, between restarts: "
        f"{f'{grew:+.1%}' if grew == grew else 'not measured (no 2-minute stretch without a restart)'}.\n",
    )
    typer.echo(text)
    if failed or any(f["recovered_s"] is None for f in faults) or grew > 0.10:
        raise typer.Exit(1)


if __name__ == "__main__":
    typer.run(main)
