"""Command line for the local Triton server: ``python -m serving serve|stop|status``."""

from __future__ import annotations

import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Annotated

import typer

from serving.front_door import FrontDoor, FrontDoorError
from serving.paths import MODEL_REPOSITORY_DIR, RUN_DIR, STATE_FILE, read_state, write_state
from serving.supervise import Supervisor
from serving.triton import (
    Ports,
    TritonError,
    TritonServer,
    free_ports,
    memory,
    pid_alive,
    remove_shm_regions,
    repository_index,
    stop_process_group,
    tail,
)

app = typer.Typer(add_completion=False, help="Run the local Triton Inference Server (CPU, no Docker).")
SUPERVISOR_LOG = RUN_DIR / "supervisor.log"


@app.command()
def serve(
    repository: Annotated[Path, typer.Option(help="model repository")] = MODEL_REPOSITORY_DIR,
    http_port: int = 8000,
    grpc_port: int = 8001,
    metrics_port: int = 8002,
    detach: Annotated[bool, typer.Option(help="start in the background and return once ready")] = False,
    timeout: Annotated[float, typer.Option(help="seconds to wait for readiness")] = 300.0,
    log_file: Annotated[Path, typer.Option(help="server log")] = RUN_DIR / "triton.log",
    extra: Annotated[list[str] | None, typer.Option(help="extra tritonserver flag (repeatable)")] = None,
    supervise: Annotated[
        bool, typer.Option(help="restart Triton when it dies or fails the deep check")
    ] = True,
    check_every: Annotated[float, typer.Option(help="seconds between deep checks")] = 5.0,
    front_door: Annotated[
        bool, typer.Option(help="HAProxy on the HTTP/gRPC ports, refusing what Triton cannot survive")
    ] = True,
) -> None:
    """Start tritonserver on REPOSITORY, wait until its models are ready, and keep it serving.

    With the front door (the default), the HTTP and gRPC ports are HAProxy's
    (k8s/base/front-door/haproxy.cfg) and Triton listens on free loopback ports behind it."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    state = read_state()
    if state and pid_alive(state["pid"]):
        raise typer.BadParameter(
            f"a server started here is already running (pid {state['pid']}); `make stop` first"
        )
    if detach:
        _serve_in_background(timeout)
        return
    ports = Ports(http_port, grpc_port, metrics_port)
    door: FrontDoor | None = None
    triton_ports, flags = ports, list(extra or ())
    if front_door:
        behind = free_ports(2)
        triton_ports = Ports(behind[0], behind[1], metrics_port)
        flags += ["--http-address=127.0.0.1", "--grpc-address=127.0.0.1"]
        door = FrontDoor(ports, triton_ports, log_path=RUN_DIR / "front-door.log")
    # A fresh admin key per run: the supervisor reloads a broken model with it, and nobody else
    # can load or unload one (the front door also refuses the repository API outright).
    admin_key = secrets.token_hex(24)
    server = TritonServer(
        repository.resolve(), triton_ports, log_path=log_file, extra_args=flags, admin_key=admin_key
    )

    def record(started: TritonServer) -> None:
        assert started.process is not None
        fields = {
            "pid": os.getpid(),
            "triton_pid": started.process.pid,
            **ports.__dict__,
            "triton_http": triton_ports.http,
            "front_door_pid": door.process.pid if door and door.process else None,
            "log": str(log_file),
            "repository": str(repository.resolve()),
            "admin_key": admin_key,
        }
        write_state(fields)

    try:
        server.start(timeout)
        if door is not None:
            door.start(30)
    except (TritonError, FrontDoorError) as exc:
        server.stop()
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(1) from exc
    record(server)
    typer.echo(
        f"Triton ready: HTTP localhost:{ports.http}  gRPC localhost:{ports.grpc}  "
        f"metrics localhost:{ports.metrics}  (log {log_file})",
        err=True,
    )
    supervisor = Supervisor(
        server, check_every_s=check_every, start_timeout_s=timeout, on_start=record, front_door=door
    )
    stopping = threading.Event()

    def on_signal(*_: object) -> None:
        stopping.set()
        supervisor.stop()

    signal.signal(signal.SIGTERM, on_signal)
    try:
        if supervise:
            supervisor.run()
        else:
            while server.process.poll() is None and not stopping.wait(1):
                pass
            if not stopping.is_set():
                typer.secho(f"tritonserver exited with code {server.process.returncode}", fg="red", err=True)
                raise typer.Exit(1)
    except KeyboardInterrupt:
        pass
    finally:
        if door is not None:
            door.stop(timeout=5)
        server.stop()
        STATE_FILE.unlink(missing_ok=True)


def _serve_in_background(timeout: float) -> None:
    """This command again without ``--detach``, in its own session; return once it is ready."""
    args = [a for a in sys.argv[1:] if a != "--detach"]
    STATE_FILE.unlink(missing_ok=True)
    SUPERVISOR_LOG.parent.mkdir(parents=True, exist_ok=True)
    with SUPERVISOR_LOG.open("ab") as out:
        child = subprocess.Popen(
            [sys.executable, "-m", "serving", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + timeout + 30
    while time.monotonic() < deadline:
        state = read_state()
        if state and state.get("pid") == child.pid:
            typer.echo(
                f"Triton ready: HTTP localhost:{state['http']}  gRPC localhost:{state['grpc']}  "
                f"metrics localhost:{state['metrics']}  (log {state['log']}; supervisor log {SUPERVISOR_LOG})"
            )
            return
        if child.poll() is not None:
            typer.secho(f"error: the server did not start; see {SUPERVISOR_LOG}:", fg="red", err=True)
            typer.echo(tail(SUPERVISOR_LOG), err=True)
            raise typer.Exit(1)
        time.sleep(0.5)
    child.terminate()
    raise typer.Exit(1)


@app.command()
def stop() -> None:
    """Stop the server started with ``serve --detach``: its supervisor, Triton and Triton's stubs."""
    state = read_state()
    if not state:
        typer.echo("no server running")
        return
    supervisor, triton_pid = state["pid"], state.get("triton_pid", state["pid"])
    alive = pid_alive(supervisor) or pid_alive(triton_pid)
    if pid_alive(supervisor):
        os.kill(supervisor, signal.SIGTERM)  # it stops Triton and its stubs
        deadline = time.monotonic() + 90
        while pid_alive(supervisor) and time.monotonic() < deadline:
            time.sleep(0.2)
    # Also when Triton or the supervisor died on its own: stubs share Triton's process group and
    # may have outlived it, holding their shared memory.
    stop_process_group(triton_pid)
    if state.get("front_door_pid"):
        stop_process_group(state["front_door_pid"])
    triton_http = state.get("triton_http", state["http"])
    remove_shm_regions(TritonServer(MODEL_REPOSITORY_DIR, Ports(triton_http)).shm_prefix)
    STATE_FILE.unlink(missing_ok=True)
    if alive:
        typer.echo(f"stopped Triton (pid {triton_pid})")
    else:
        typer.echo(f"Triton (pid {triton_pid}) had already exited; removed what it left behind")


@app.command()
def status() -> None:
    """Print whether the local server is up and which models are ready."""
    state = read_state()
    port = state.get("triton_http", state["http"]) if state else 8000
    admin = {"admin-key": state["admin_key"]} if state and state.get("admin_key") else None
    try:
        models = repository_index(f"http://localhost:{port}", admin)
    except (OSError, ValueError):
        typer.echo(f"no server answering on localhost:{port}")
        raise typer.Exit(1) from None
    rss = {}
    if state and pid_alive(state["triton_pid"]):
        handle = TritonServer(
            Path(state.get("repository", ".")), Ports(port), admin_key=state.get("admin_key")
        )
        rss = memory(state, handle.stubs())
        processes = ", ".join(
            f"{name} {rss.pop(name) / 1024:.0f} MiB" for name in ("tritonserver", "front_door") if name in rss
        )
        typer.echo(f"resident memory: {processes}; the models' stubs below")
    for model in models:
        reason = f"  {model['reason']}" if model.get("reason") else ""
        stubs = f"{rss[model['name']] / 1024:>7.0f} MiB" if model["name"] in rss else " " * 11
        typer.echo(f"{model['name']:<34} {model.get('state', '?'):<12}{stubs}{reason}")
    if any(model.get("state") != "READY" for model in models):
        raise typer.Exit(1)


@app.command()
def configs(
    check: Annotated[bool, typer.Option("--check", help="only compare; exit 1 when they differ")] = False,
) -> None:
    """Write every rendered config.pbtxt, every target, to deploy/configs/ (or --check them)."""
    from serving.catalog import all_models
    from serving.modelspec import TARGETS
    from serving.render import committed_configs

    specs = all_models(every_network=True)
    stale = []
    for target in TARGETS:
        for path, text in committed_configs(target, specs).items():
            if path.is_file() and path.read_text() == text:
                continue
            stale.append(path)
            if not check:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
    verb = "differ from rendering" if check else "written"
    for path in stale:
        typer.echo(f"{verb}: {path}")
    if check and stale:
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
