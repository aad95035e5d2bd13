"""Soak: the served stack under steady mixed load for a long time, with faults injected.

    python -m perf.soak                    # make perf-soak: 30 minutes, a fault every 4 minutes
    python -m perf.soak --minutes 5 --fault-every 60 --out perf/out/soak   # a short look

Runs ``python -m serving serve`` (front door, supervisor) in a run folder of its own, on free
ports, with ``faq_match`` and ``efficientnet_lite0``; sends questions and photos at fixed rates
(250/s, about what one synchronous client thread sends, and 20/s, about a fifth of 90/s)
through ``serving.client`` (retrying for up to 30 s); every ``--fault-every`` seconds injects the
next of: a stub stopped for 1.5 s, a stub killed, the server killed. Records (CSV): each fault
and the time until the deep check passed again; resident memory of the server, each stub and
the front door every 10 s; requests, errors before and after retries, per minute. Goals: no
failure after retries, every fault recovered, memory after warm-up growing at most 10%.
"""

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
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import numpy as np
import psutil
import typer

from faq.evaluate import machine
from perf import OUT_DIR, RESULTS_DIR, RESULTS_MD, replace_section
from serving import health
from serving.client import RETRYABLE, ClientError, Endpoint, infer
from serving.paths import REPO_ROOT
from serving.triton import Ports, TritonServer, free_ports

SECTION = "## Soak"
MODELS = ["faq_match", "efficientnet_lite0"]
FAULTS = ("stall", "kill_stub", "kill_server")
RUN = OUT_DIR / "soak_run"  # the served stack's state (with its admin key) and logs: scratch


class Soak:
    def __init__(self, folder: Path, ports: Ports) -> None:
        self.folder, self.ports, self.running = folder, ports, True
        self.counts: dict[tuple[int, str], list[int]] = {}  # (minute, model) -> sent, first errors, failed
        self.started = time.monotonic()
        self.lock = threading.Lock()

    def state(self) -> dict:
        """The serve command's state file; rewritten at every restart, so read again if caught
        in the middle."""
        for _ in range(50):
            try:
                return json.loads((RUN / "triton.json").read_text())
            except (OSError, ValueError):
                time.sleep(0.2)
        return json.loads((RUN / "triton.json").read_text())

    def server(self) -> TritonServer:
        """A handle on the running server, for its stubs (found by its shared-memory prefix)."""
        state = self.state()
        return TritonServer(REPO_ROOT, Ports(state["triton_http"]), admin_key=state["admin_key"])

    def count(self, model: str, column: int) -> None:
        with self.lock:
            row = self.counts.setdefault((int((time.monotonic() - self.started) // 60), model), [0, 0, 0])
            row[column] += 1

    def load(self, model: str, inputs: list[np.ndarray], output: str, per_second: float) -> None:
        """Requests at a fixed rate; an error of the first attempt is counted, then retried."""
        endpoint = Endpoint(f"127.0.0.1:{self.ports.http}")
        client, name, n = endpoint.client(), "TEXT" if model == "faq_match" else "IMAGE", 0
        next_at = time.monotonic()
        while self.running:
            next_at += 1 / per_second
            time.sleep(max(0.0, next_at - time.monotonic()))
            self.count(model, 0)
            data, n = {name: inputs[n % len(inputs)]}, n + 1
            try:
                infer(endpoint, model, data, [output], client=client, timeout_s=30)
            except RETRYABLE:
                self.count(model, 1)
                try:
                    infer(endpoint, model, data, [output], timeout_s=30, retry_s=30)
                except ClientError:
                    self.count(model, 2)
            except ClientError:
                self.count(model, 2)

    def inject(self, number: int) -> tuple[str, str]:
        """The ``number``-th fault: (what, whose)."""
        fault, stubs = FAULTS[number % len(FAULTS)], self.server().stubs()
        if fault == "kill_server":
            os.kill(self.state()["triton_pid"], signal.SIGKILL)
            return fault, "tritonserver"
        model = sorted(stubs)[number % len(stubs)]
        if fault == "kill_stub":
            os.kill(stubs[model][0], signal.SIGKILL)
        else:
            os.kill(stubs[model][0], signal.SIGSTOP)
            time.sleep(1.5)
            os.kill(stubs[model][0], signal.SIGCONT)
        return fault, model

    def recovered_after(self, since: float, limit_s: float = 300) -> float | None:
        time.sleep(1)
        while time.monotonic() - since < limit_s:
            try:
                server = self.server()
                if all(v.healthy for v in health.check(server.http_url, 5, server.admin_key)):
                    return time.monotonic() - since
            except (OSError, ValueError, KeyError):
                pass  # the state file is rewritten during a restart
            time.sleep(0.5)
        return None

    def memory(self) -> dict[str, int]:
        """Resident KiB of the server, each stub (summed by model) and the front door."""
        state, found = self.state(), {}
        pids = {"tritonserver": [state["triton_pid"]], "front_door": [state["front_door_pid"]]}
        for model, stub_pids in {**pids, **self.server().stubs()}.items():
            for pid in stub_pids:
                with contextlib.suppress(psutil.Error):
                    found[model] = found.get(model, 0) + psutil.Process(pid).memory_info().rss // 1024
        return found


def main(
    minutes: Annotated[float, typer.Option(help="how long the load runs")] = 30,
    fault_every: Annotated[float, typer.Option(help="seconds between injected faults")] = 240,
    faq_rate: Annotated[float, typer.Option(help="questions/s (one client thread: ~270/s at most)")] = 250,
    image_rate: Annotated[float, typer.Option(help="photos per second")] = 20,
    out: Annotated[
        Path | None, typer.Option(help="records folder (default perf/results/<date>/soak)")
    ] = None,
) -> None:
    """Serve, load, inject faults, record; exits 1 when a goal is missed."""
    from export.build_repository import build
    from faq.data import load_dataset, split_duplicates
    from imaging.samples import all_samples

    folder = (out or RESULTS_DIR / datetime.now(UTC).strftime("%Y-%m-%d") / "soak").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    repository = OUT_DIR / "soak_repository"
    build("cpu", repository, only=MODELS, with_steps=True)
    soak, flags = Soak(folder, Ports(*free_ports(3))), ["--repository", str(repository)]
    for name, port in soak.ports.__dict__.items():
        flags += [f"--{name}-port", str(port)]
    shutil.rmtree(RUN, ignore_errors=True)
    env = {**os.environ, "TRITON_STACK_RUN_DIR": str(RUN)}
    command = [sys.executable, "-m", "serving", "serve", *flags]
    server = subprocess.Popen(command, env=env, cwd=REPO_ROOT, start_new_session=True)
    faults: list[dict] = []
    samples: list[dict] = []
    try:
        while not (RUN / "triton.json").exists():
            if server.poll() is not None:
                raise typer.Exit(1)
            time.sleep(1)
        texts = split_duplicates(load_dataset())[1]["text"]
        questions = [np.array([[str(q).encode()]], dtype=object) for q in texts]
        photos = [np.array([[p.read_bytes()]], dtype=object) for p in all_samples().values()]
        loads = [("faq_match", questions, "FAQ_ID", faq_rate), (MODELS[1], photos, "CLASS_ID", image_rate)]
        threads = [threading.Thread(target=soak.load, args=spec, daemon=True) for spec in loads]
        for thread in threads:
            thread.start()
        end = soak.started + 60 * minutes
        next_fault, next_sample = soak.started + fault_every, soak.started
        while (now := time.monotonic()) < end:
            if now >= next_sample:
                samples.append({"s": round(now - soak.started), **soak.memory()})
                next_sample += 10
            if now >= next_fault and end - now > min(60, fault_every):  # time left to recover
                kind, target = soak.inject(len(faults))
                took = soak.recovered_after(now)
                faults.append(
                    {"s": round(now - soak.started), "fault": kind, "target": target, "recovered_s": took}
                )
                typer.echo(f"fault {faults[-1]}")
                next_fault += fault_every
            time.sleep(1)
        soak.running = False
        for thread in threads:
            thread.join(timeout=60)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=120)
    write(folder, soak, faults, samples, " ".join(["python -m perf.soak", *sys.argv[1:]]))


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


def write(folder: Path, soak: Soak, faults: list[dict], samples: list[dict], command: str) -> None:
    """The records (CSV), the generated section of perf/RESULTS.md, and the verdict."""
    _csv(folder / "faults.csv", faults)
    _csv(folder / "memory.csv", samples)
    columns = ("sent", "errors_first_attempt", "failed_after_retries")
    counts = [
        {"minute": m, "model": model, **dict(zip(columns, row, strict=True))}
        for (m, model), row in sorted(soak.counts.items())
    ]
    _csv(folder / "requests.csv", counts)
    sent, first, failed = (sum(c[k] for c in counts) for k in columns)
    grew = growth(samples, [f["s"] for f in faults if f["fault"] == "kill_server"])
    each = ", ".join(f"{f['fault']} {f['recovered_s'] or float('nan'):.1f} s" for f in faults)
    where = folder.relative_to(REPO_ROOT) if folder.is_relative_to(REPO_ROOT) else folder
    text = (
        f"{SECTION}\n\nRun of {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}: `{command}`; "
        f"records in `{where}/`.\n\n"
        f"Requests {sent:,}; errors on a first attempt {first:,}; **failed after retries {failed:,}**. "
        f"Faults {len(faults)}, recovered (deep check passing again) after: {each or 'none injected'}. "
        f"Largest growth of resident memory after warm-up, between restarts: "
        f"{f'{grew:+.1%}' if grew == grew else 'not measured (no 2-minute stretch without a restart)'}.\n"
    )
    (folder / "summary.md").write_text(text)
    if folder.is_relative_to(RESULTS_DIR):
        RESULTS_MD.write_text(replace_section(RESULTS_MD.read_text(), SECTION, text))
    typer.echo(text)
    if failed or any(f["recovered_s"] is None for f in faults) or grew > 0.10:
        raise typer.Exit(1)


if __name__ == "__main__":
    typer.run(main)
