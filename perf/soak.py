"""Soak: the served stack under steady mixed load for a long time, with faults injected.

    python -m perf.soak [--minutes 30] [--fault-every 240] [--out DIR]   # make perf-soak

Serves as ``make serve`` does, loads it through ``serving.client``, injects a stub stall, a stub
kill and a server kill in turn, and records recoveries, memory and errors (docs/perf.md)."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import numpy as np
import psutil
import typer

from perf import OUT_DIR, RESULTS_DIR, RESULTS_MD, replace_section
from serving import health
from serving.client import RETRYABLE, ClientError, Endpoint, infer
from serving.paths import REPO_ROOT
from serving.triton import Ports, TritonServer, free_ports

SECTION = "## Soak"
FAULTS = ("stall", "kill_stub", "kill_server")
RUN = OUT_DIR / "soak_run"  # the served stack's state (with its admin key) and logs: scratch
COLUMNS = ("sent", "errors_first_attempt", "failed_after_retries")
PER_THREAD = 150  # requests/s one client thread sends reliably (synchronous HTTP, the GIL)
LOCK = threading.Lock()


def state() -> dict:
    """The serve command's state file, read again when a restart is rewriting it."""
    for _ in range(50):
        with contextlib.suppress(OSError, ValueError):
            return json.loads((RUN / "triton.json").read_text())
        time.sleep(0.2)
    raise RuntimeError(f"{RUN / 'triton.json'} is gone")


def served() -> TritonServer:
    """A handle on the running server, for its stubs (found by its shared-memory prefix)."""
    now = state()
    return TritonServer(REPO_ROOT, Ports(now["triton_http"]), admin_key=now["admin_key"])


class Load(threading.Thread):
    """Requests to one ensemble at a fixed rate; a first attempt's error is counted, then retried."""

    def __init__(self, port: int, model: str, inputs: list[np.ndarray], rate: float, counts: Counter) -> None:
        super().__init__(daemon=True)
        self.endpoint, self.model, self.inputs, self.rate = Endpoint(f"127.0.0.1:{port}"), model, inputs, rate
        self.counts, self.running, self.started = counts, True, time.monotonic()

    def run(self) -> None:
        endpoint, model, client = self.endpoint, self.model, self.endpoint.client()
        tensor, output = ("TEXT", "FAQ_ID") if model == "faq_match" else ("IMAGE", "CLASS_ID")
        for n in range(1 << 62):
            time.sleep(max(0.0, self.started + n / self.rate - time.monotonic()))
            if not self.running:
                return
            minute, data = (
                int((time.monotonic() - self.started) // 60),
                {tensor: self.inputs[n % len(self.inputs)]},
            )
            self.count(minute, 0)
            try:
                infer(endpoint, model, data, [output], client=client, timeout_s=30)
            except (RETRYABLE, ClientError) as exc:
                self.count(minute, 1)
                with contextlib.suppress(ClientError):
                    if isinstance(exc, RETRYABLE):
                        infer(endpoint, model, data, [output], timeout_s=30, retry_s=30)
                        continue
                self.count(minute, 2)

    def count(self, minute: int, column: int) -> None:
        with LOCK:
            self.counts[(minute, self.model, COLUMNS[column])] += 1


def inject(number: int) -> tuple[str, str]:
    """The ``number``-th fault: (what, whose)."""
    fault, stubs = FAULTS[number % len(FAULTS)], served().stubs()
    if fault == "kill_server":
        os.kill(state()["triton_pid"], signal.SIGKILL)
        return fault, "tritonserver"
    model = sorted(stubs)[number % len(stubs)]
    os.kill(stubs[model][0], signal.SIGKILL if fault == "kill_stub" else signal.SIGSTOP)
    if fault == "stall":
        time.sleep(1.5)
        os.kill(stubs[model][0], signal.SIGCONT)
    return fault, model


def recovered_after(since: float, limit_s: float = 300) -> float | None:
    """Seconds from ``since`` until every ensemble answers the deep check again."""
    time.sleep(1)
    while time.monotonic() - since < limit_s:
        with contextlib.suppress(OSError, ValueError, KeyError, RuntimeError):
            server = served()
            if all(v.healthy for v in health.check(server.http_url, 5, server.admin_key)):
                return time.monotonic() - since
        time.sleep(0.5)
    return None


def memory() -> dict[str, int]:
    """Resident KiB of the server, each step's stubs and the front door."""
    now, found = state(), Counter()
    pids = {"tritonserver": [now["triton_pid"]], "front_door": [now["front_door_pid"]], **served().stubs()}
    for name, numbers in pids.items():
        for pid in numbers:
            with contextlib.suppress(psutil.Error):
                found[name] += psutil.Process(pid).memory_info().rss // 1024
    return dict(found)


def main(
    minutes: Annotated[float, typer.Option(help="how long the load runs")] = 30,
    fault_every: Annotated[float, typer.Option(help="seconds between injected faults")] = 240,
    faq_rate: Annotated[float, typer.Option(help="questions/s (about half of 3,400/s alone)")] = 600,
    image_rate: Annotated[float, typer.Option(help="photos/s (about half of 90/s alone)")] = 20,
    out: Annotated[Path | None, typer.Option(help="records (default perf/results/<date>/soak)")] = None,
) -> None:
    """Serve, load, inject faults, record; exits 1 when a goal is missed."""
    from export.build_repository import build
    from faq.data import load_dataset, split_duplicates
    from imaging.samples import all_samples

    folder = out or RESULTS_DIR / datetime.now(UTC).strftime("%Y-%m-%d") / "soak"
    folder.mkdir(parents=True, exist_ok=True)
    build("cpu", OUT_DIR / "soak_repository", only=["faq_match", "efficientnet_lite0"], with_steps=True)
    ports, counts, faults, samples = Ports(*free_ports(3)), Counter(), [], []
    flags = [f"--{name}-port={port}" for name, port in ports.__dict__.items()]
    shutil.rmtree(RUN, ignore_errors=True)
    command = [
        sys.executable,
        "-m",
        "serving",
        "serve",
        f"--repository={OUT_DIR / 'soak_repository'}",
        *flags,
    ]
    env = {**os.environ, "TRITON_STACK_RUN_DIR": str(RUN)}
    server = subprocess.Popen(command, env=env, cwd=REPO_ROOT, start_new_session=True)
    try:
        while not (RUN / "triton.json").exists():
            if server.poll() is not None:
                raise typer.Exit(1)
            time.sleep(1)
        questions = [
            np.array([[str(q).encode()]], dtype=object) for q in split_duplicates(load_dataset())[1]["text"]
        ]
        photos = [np.array([[p.read_bytes()]], dtype=object) for p in all_samples().values()]
        loads = [
            Load(ports.http, model, inputs, rate / threads, counts)
            for model, inputs, rate in (
                ("faq_match", questions, faq_rate),
                ("efficientnet_lite0", photos, image_rate),
            )
            for threads in [max(1, -(-int(rate) // PER_THREAD))]
            for _ in range(threads)
        ]
        for load in loads:
            load.start()
        started = time.monotonic()
        while (now := time.monotonic()) < started + 60 * minutes:
            if not samples or now - started - samples[-1]["s"] >= 10:
                samples.append({"s": round(now - started), **memory()})
            if (len(faults) + 1) * fault_every <= now - started < 60 * minutes - min(60, fault_every):
                fault, target = inject(len(faults))
                faults.append(
                    {
                        "s": round(now - started),
                        "fault": fault,
                        "target": target,
                        "recovered_s": recovered_after(now),
                    }
                )
                typer.echo(f"fault {faults[-1]}")
            time.sleep(1)
        for load in loads:
            load.running = False
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=120)
    write(folder, counts, faults, samples, " ".join(["python -m perf.soak", *sys.argv[1:]]))


def _csv(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, list(dict.fromkeys(k for row in rows for k in row)))
        writer.writeheader()
        writer.writerows(rows)


def growth(samples: list[dict], restarts: list[int]) -> float:
    """The largest growth of total resident memory over a stretch between server restarts, from
    2 minutes into the stretch (warm-up) to its end; NaN when no stretch is that long."""
    grown = []
    for start, stop in zip([0, *restarts], [*restarts, 1 << 30], strict=True):
        total = [sum(v for k, v in s.items() if k != "s") for s in samples if start + 120 <= s["s"] < stop]
        grown += [(total[-1] - total[0]) / total[0]] if len(total) > 1 else []
    return max(grown, default=float("nan"))


def write(folder: Path, counts: Counter, faults: list[dict], samples: list[dict], command: str) -> None:
    """The records (CSV), the summary (and perf/RESULTS.md's section), and the verdict."""
    keys = sorted({(minute, model) for minute, model, _ in counts})
    _csv(
        folder / "requests.csv",
        [{"minute": m, "model": x, **{c: counts[(m, x, c)] for c in COLUMNS}} for m, x in keys],
    )
    _csv(folder / "faults.csv", faults)
    _csv(folder / "memory.csv", samples)
    sent, first, failed = (sum(n for key, n in counts.items() if key[2] == c) for c in COLUMNS)
    grew = growth(samples, [f["s"] for f in faults if f["fault"] == "kill_server"])
    each = (
        ", ".join(f"{f['fault']} {f['recovered_s'] or float('nan'):.1f} s" for f in faults) or "none injected"
    )
    where = folder.relative_to(REPO_ROOT) if folder.is_relative_to(REPO_ROOT) else folder
    grew_text = f"{grew:+.1%}" if grew == grew else "not measured (no 2-minute stretch without a restart)"
    text = (
        f"{SECTION}\n\nRun of {datetime.now(UTC):%Y-%m-%d %H:%M} UTC: `{command}`; records in `{where}/`.\n\n"
        f"Requests {sent:,}; errors on a first attempt {first:,}; **failed after retries {failed:,}**. "
        f"Faults {len(faults)}, recovered (deep check passing again) after: {each}. "
        f"Largest growth of resident memory after warm-up, between restarts: {grew_text}.\n"
    )
    (folder / "summary.md").write_text(text)
    if folder.is_relative_to(RESULTS_DIR):
        RESULTS_MD.write_text(replace_section(RESULTS_MD.read_text(), SECTION, text))
    typer.echo(text)
    if failed or any(f["recovered_s"] is None for f in faults) or grew > 0.10:
        raise typer.Exit(1)


if __name__ == "__main__":
    typer.run(main)
