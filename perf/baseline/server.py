"""Start and stop Azure ML's scoring server (``azmlinfsrv``) for one baseline scoring script.

Like :class:`serving.triton.TritonServer`: a subprocess in its own process group (gunicorn
and its workers stop together), on a free loopback port, ready only once every worker has
run the script's ``init()``. Also a command line for trying a baseline by hand::

    python -m perf.baseline.server faq_sklearn --port 5001
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Self

import typer

from perf import OUT_DIR
from serving.paths import REPO_ROOT
from serving.triton import ManagedServer, free_ports, port_is_free

log = logging.getLogger(__name__)

BASELINE_DIR = Path(__file__).resolve().parent
SCRIPTS = {
    "faq_pairwise": BASELINE_DIR / "score_faq_pairwise.py",
    "faq_sklearn": BASELINE_DIR / "score_faq_sklearn.py",
    "resnet_torch": BASELINE_DIR / "score_resnet_torch.py",
}
READY_LINE = "ready for serving traffic"  # logged by each worker after init()


class BaselineError(RuntimeError):
    pass


@dataclass
class AzmlServer(ManagedServer):
    """``azmlinfsrv --entry_script SCRIPT --model_dir DIR --port PORT --worker_count N``."""

    label = "azmlinfsrv"
    error = BaselineError
    cwd = REPO_ROOT

    entry_script: Path
    model_dir: Path | None = None
    port: int = 0  # 0: a free port
    workers: int = 1
    log_path: Path = OUT_DIR / "azmlinfsrv.log"
    env: dict[str, str] = field(default_factory=dict)
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        if not self.port:
            self.port = free_ports(1)[0]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        cmd = [
            sys.executable,
            "-m",
            "perf.baseline.azmlinfsrv_loopback",
            "--entry_script",
            str(self.entry_script),
            "--port",
            str(self.port),
            "--worker_count",
            str(self.workers),
        ]
        if self.model_dir is not None:
            cmd += ["--model_dir", str(self.model_dir)]
        return cmd

    def display_command(self) -> str:
        script = Path(self.entry_script).resolve().relative_to(REPO_ROOT)
        model = f" --model_dir {self.model_dir}" if self.model_dir else ""
        return f"azmlinfsrv --entry_script {script}{model} --port {self.port} --worker_count {self.workers}"

    def environment(self) -> dict[str, str]:
        import os

        env = dict(os.environ)
        env.update(self.env)
        paths = [str(REPO_ROOT), *[p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]]
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
        env["AML_APP_ROOT"] = str(REPO_ROOT)
        env.setdefault("AML_APP_INSIGHTS_ENABLED", "false")
        return env

    def _preflight(self) -> None:
        if not port_is_free(self.port):
            raise BaselineError(f"port {self.port} is in use")
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0

    def start(self, timeout: float = 600.0) -> Self:
        return super().start(timeout)

    def _ready_workers(self) -> int:
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(self._log_offset)
                return fh.read().decode(errors="replace").count(READY_LINE)
        except OSError:
            return 0

    def is_healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/", timeout=2) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def is_ready(self) -> bool:
        """Every worker has run ``init()`` and the server answers its health route."""
        return self._ready_workers() >= self.workers and self.is_healthy()


app = typer.Typer(add_completion=False, help=__doc__)


@app.command()
def main(
    baseline: Annotated[str, typer.Argument(help=f"one of {', '.join(SCRIPTS)}")],
    port: int = 5001,
    workers: int = 1,
    model_root: Annotated[Path, typer.Option(help="where trained FAQ models are kept")] = OUT_DIR
    / "baseline_models",
) -> None:
    """Serve one baseline in the foreground until Ctrl-C."""
    from perf.baseline import models

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if baseline not in SCRIPTS:
        raise typer.BadParameter(f"choose from {', '.join(SCRIPTS)}")
    model_dir = models.prepare(baseline, model_root) if baseline in models.KINDS else None
    server = AzmlServer(
        SCRIPTS[baseline], model_dir, port, workers, log_path=OUT_DIR / f"azml_{baseline}.log"
    )
    with server:
        typer.echo(f"{server.display_command()}\nready: POST {server.url}/score (Ctrl-C stops)")
        try:
            while server.process is not None and server.process.poll() is None:
                time.sleep(1)
        except KeyboardInterrupt:
            pass


if __name__ == "__main__":
    app()
