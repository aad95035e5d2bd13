"""Start and stop Azure ML's scoring server (``azmlinfsrv``) for one baseline scoring script.

Like :class:`serving.triton.TritonServer`: a subprocess in its own process group (gunicorn
and its workers stop together), on a free loopback port, ready only once every worker has
run the script's ``init()``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from perf import OUT_DIR
from serving.paths import REPO_ROOT
from serving.triton import ManagedServer, free_ports

BASELINE_DIR = Path(__file__).resolve().parent
SCRIPTS = {
    "faq_pairwise": BASELINE_DIR / "score_faq.py",  # (a) and (b): the model folder decides
    "faq_sklearn": BASELINE_DIR / "score_faq.py",
    "resnet_torch": BASELINE_DIR / "score_resnet_torch.py",
}
READY_LINE = "ready for serving traffic"  # logged by each worker after init()


@dataclass
class AzmlServer(ManagedServer):
    """``azmlinfsrv --entry_script SCRIPT --model_dir DIR --port PORT --worker_count N``."""

    label = "azmlinfsrv"
    cwd = REPO_ROOT

    entry_script: Path
    model_dir: Path | None = None
    workers: int = 1
    log_path: Path = OUT_DIR / "azmlinfsrv.log"
    process: subprocess.Popen[bytes] | None = None
    port: int = field(default_factory=lambda: free_ports(1)[0], init=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        flags = f"--entry_script {self.entry_script} --port {self.port} --worker_count {self.workers}"
        model = ["--model_dir", str(self.model_dir)] if self.model_dir is not None else []
        return [sys.executable, "-m", "perf.baseline.azmlinfsrv_loopback", *flags.split(), *model]

    def environment(self) -> dict[str, str]:
        python_path = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
        extra = {"PYTHONPATH": python_path, "AML_APP_ROOT": str(REPO_ROOT)}
        return {"AML_APP_INSIGHTS_ENABLED": "false", **os.environ, **extra}

    def _preflight(self) -> None:
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0

    def start(self, timeout: float = 600.0) -> Self:  # the pairwise model loads slowly
        return super().start(timeout)

    def is_ready(self) -> bool:
        """Every worker has run ``init()`` and the server answers its health route."""
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(self._log_offset)
                if fh.read().decode(errors="replace").count(READY_LINE) < self.workers:
                    return False
            with urllib.request.urlopen(f"{self.url}/", timeout=2) as resp:
                return resp.status == 200
        except OSError:
            return False
