"""Command line for the local Triton server: ``python -m serving serve|stop|status``."""

from __future__ import annotations

import json
import logging
import signal
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from serving.paths import MODEL_REPOSITORY_DIR, RUN_DIR
from serving.triton import (
    Ports,
    TritonError,
    TritonServer,
    pid_alive,
    remove_shm_regions,
    repository_index,
    stop_process_group,
)

app = typer.Typer(add_completion=False, help="Run the local Triton Inference Server (CPU, no Docker).")
STATE_FILE = RUN_DIR / "triton.json"


def _read_state() -> dict | None:
    try:
        return json.loads(STATE_FILE.read_text())
    except (OSError, ValueError):
        return None


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
) -> None:
    """Start tritonserver on REPOSITORY and wait until every model is ready."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    state = _read_state()
    if state and pid_alive(state["pid"]):
        raise typer.BadParameter(
            f"a server started here is already running (pid {state['pid']}); `make stop` first"
        )
    ports = Ports(http_port, grpc_port, metrics_port)
    server = TritonServer(repository.resolve(), ports, log_path=log_file, extra_args=extra or ())
    try:
        server.start(timeout)
    except TritonError as exc:
        typer.secho(f"error: {exc}", fg="red", err=True)
        raise typer.Exit(1) from exc
    assert server.process is not None
    STATE_FILE.parent.mkdir(parents=True, exist_ok=True)
    STATE_FILE.write_text(json.dumps({"pid": server.process.pid, **ports.__dict__, "log": str(log_file)}))
    typer.echo(
        f"Triton ready: HTTP localhost:{ports.http}  gRPC localhost:{ports.grpc}  "
        f"metrics localhost:{ports.metrics}  (log {log_file})"
    )
    if detach:
        return
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while server.process.poll() is None:
            time.sleep(1)
        typer.secho(f"tritonserver exited with code {server.process.returncode}", fg="red", err=True)
        raise typer.Exit(1)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.stop()
        STATE_FILE.unlink(missing_ok=True)


@app.command()
def stop() -> None:
    """Stop the server started with ``serve --detach`` (and its Python-backend stubs)."""
    state = _read_state()
    if not state:
        typer.echo("no server running")
        return
    alive = pid_alive(state["pid"])
    # Also when the server died on its own: its stubs share its process group and may have
    # outlived it, holding their shared memory.
    stop_process_group(state["pid"])
    remove_shm_regions(TritonServer(MODEL_REPOSITORY_DIR, Ports(state["http"])).shm_prefix)
    STATE_FILE.unlink(missing_ok=True)
    if alive:
        typer.echo(f"stopped Triton (pid {state['pid']})")
    else:
        typer.echo(f"Triton (pid {state['pid']}) had already exited; removed what it left behind")


@app.command()
def status() -> None:
    """Print whether the local server is up and which models are ready."""
    state = _read_state()
    port = state["http"] if state else 8000
    try:
        models = repository_index(f"http://localhost:{port}")
    except (OSError, ValueError):
        typer.echo(f"no server answering on localhost:{port}")
        raise typer.Exit(1) from None
    for model in models:
        reason = f"  {model['reason']}" if model.get("reason") else ""
        typer.echo(f"{model['name']:<34} {model.get('state', '?'):<12}{reason}")
    if any(model.get("state") != "READY" for model in models):
        raise typer.Exit(1)


@app.command()
def configs(
    check: Annotated[bool, typer.Option("--check", help="only compare; exit 1 when they differ")] = False,
) -> None:
    """Write every rendered config.pbtxt, both targets, to deploy/configs/ (or --check them)."""
    from serving.catalog import all_models
    from serving.render import committed_configs

    specs = all_models(every_network=True)
    stale = []
    for target in ("cpu", "gpu"):
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
