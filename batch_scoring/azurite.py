"""Start and stop a private Azurite (Azure Blob Storage emulator) for demos and tests.

Azurite is the npm package pinned in `batch_scoring/azurite/package-lock.json` (3.35.0, the
newest release whose `engines.node` accepts Node.js 20), installed by
`scripts/setup_azurite.sh` into the git-ignored `batch_scoring/azurite/node_modules`. Nothing is
downloaded here: a missing install is an error that names the set-up script.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from functools import partial
from pathlib import Path

from batch_scoring.lifetime import die_with_parent
from batch_scoring.storage import AZURITE_ACCOUNT, azurite_connection_string

AZURITE_DIR = Path(__file__).resolve().parent / "azurite"
AZURITE_BIN = AZURITE_DIR / "node_modules" / ".bin" / "azurite-blob"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def responds(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    """True if an Azurite-like Blob endpoint answers HTTP on the port (any status code)."""
    try:
        urllib.request.urlopen(f"http://{host}:{port}/{AZURITE_ACCOUNT}?comp=list", timeout=timeout)
    except urllib.error.HTTPError:
        return True  # 403 without a signature: the service is up
    except OSError:
        return False
    return True


class Azurite:
    """`with Azurite() as az: az.connection_string` - blob service only, on a free port."""

    def __init__(
        self, location: str | Path | None = None, port: int | None = None, log_path: str | Path | None = None
    ) -> None:
        self.port = port or free_port()
        self._tmp = None if location else tempfile.TemporaryDirectory(prefix="azurite-")
        self.location = Path(location or self._tmp.name)
        self.log_path = Path(log_path) if log_path else self.location / "azurite.log"
        self.proc: subprocess.Popen | None = None

    @property
    def connection_string(self) -> str:
        return azurite_connection_string(self.port)

    def start(self, timeout: float = 30.0) -> Azurite:
        if not AZURITE_BIN.exists():
            raise RuntimeError(f"Azurite is not installed ({AZURITE_BIN}); run scripts/setup_azurite.sh")
        self.location.mkdir(parents=True, exist_ok=True)
        cmd = [
            str(AZURITE_BIN),
            "--loose",
            "--skipApiVersionCheck",
            "--disableTelemetry",
            "--silent",
            "--location",
            str(self.location),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(self.port),
        ]
        log = open(self.log_path, "ab")  # noqa: SIM115 - lives as long as the process
        self.proc = subprocess.Popen(
            cmd,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            preexec_fn=partial(die_with_parent, signal.SIGTERM),
        )
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"Azurite exited with {self.proc.returncode}; log: {self.log_path}")
            if responds(self.port):
                return self
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"Azurite did not answer on port {self.port} in {timeout}s; log: {self.log_path}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def ensure_azurite(port: int = 10000, location: str | Path | None = None):
    """Use the Azurite already listening on `port`, or start one there for the duration."""
    if responds(port):
        yield None
        return
    loc = Path(location or os.environ.get("AZURITE_LOCATION") or AZURITE_DIR / "data")
    with Azurite(location=loc, port=port) as az:
        yield az
