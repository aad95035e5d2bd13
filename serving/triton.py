"""Start and stop a real Triton Inference Server on this machine, without Docker.

The ``nvidia-pytriton`` wheel ships a complete Triton 2.51 server and its Python backend,
but not the backend stub for the running Python in the backend folder: we copy it there.
The server runs in its own process group so that stopping it also stops the Python-backend
stub processes it started, and nothing is left behind.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

from serving.paths import REPO_ROOT, RUN_DIR

log = logging.getLogger(__name__)


class TritonError(RuntimeError):
    """The server cannot be found, started or reached."""


@dataclass(frozen=True)
class TritonInstall:
    """Where the wheel put the server binary, its backends and its bundled libraries."""

    binary: Path
    backends_dir: Path
    stub: Path

    @property
    def site_packages(self) -> Path:
        return self.binary.parents[3]


def locate_triton() -> TritonInstall:
    """Find the Triton server shipped in ``nvidia-pytriton`` for the running Python."""
    # Found, not imported: the package's own Python API (and its numpy<2 pin) is not needed to
    # run the binary, and may not import where the wheel was installed without its dependencies.
    spec = importlib.util.find_spec("pytriton")
    if spec is None or not spec.submodule_search_locations:
        raise TritonError("nvidia-pytriton is not installed; run `make setup` (scripts/setup.sh)")
    root = Path(next(iter(spec.submodule_search_locations))).resolve() / "tritonserver"
    binary = root / "bin" / "tritonserver"
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    stub = root / "python_backend_stubs" / version / "triton_python_backend_stub"
    if not binary.is_file():
        raise TritonError(f"Triton binary not found at {binary}")
    if not stub.is_file():
        raise TritonError(f"no Python backend stub for Python {version} under {stub.parent.parent}")
    return TritonInstall(binary=binary, backends_dir=root / "backends", stub=stub)


def prepare_python_backend(install: TritonInstall) -> None:
    """Put the stub for this Python next to the Python backend (idempotent)."""
    target = install.backends_dir / "python" / "triton_python_backend_stub"
    if target.is_file() and target.stat().st_size == install.stub.stat().st_size:
        return
    shutil.copy2(install.stub, target)
    target.chmod(0o755)


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on ``port`` now. Sockets of a server that just stopped
    (TIME_WAIT) do not count, as they do not for Triton, which binds with SO_REUSEADDR."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def free_ports(count: int) -> list[int]:
    """Ask the kernel for ``count`` distinct free ports (for tests that run side by side)."""
    sockets, ports = [], []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
            ports.append(sock.getsockname()[1])
    finally:
        for sock in sockets:
            sock.close()
    return ports


@dataclass(frozen=True)
class Ports:
    http: int = 8000
    grpc: int = 8001
    metrics: int = 8002

    @classmethod
    def free(cls) -> Ports:
        return cls(*free_ports(3))


class ManagedServer:
    """Start-up, readiness and shutdown shared by the servers the project runs as subprocesses.

    A subclass provides ``command()``, ``environment()``, ``is_ready()`` and the attributes
    ``log_path`` and ``process``; it may check things before start (``_preflight``) and clean
    up after stop (``_after_stop``). The process gets its own process group so that stopping
    it also stops every worker or stub it started.
    """

    label = "server"
    error: type[Exception] = RuntimeError
    cwd: Path | None = None
    log_path: Path
    process: subprocess.Popen[bytes] | None

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    def is_ready(self) -> bool:
        raise NotImplementedError

    def _preflight(self) -> None:
        """Raise ``self.error`` for anything that would make the start fail."""

    def _after_stop(self) -> None:
        """Clean up what the process may have left behind."""

    def start(self, timeout: float = 180.0) -> Self:
        if self.process is not None:
            raise self.error(f"{self.label} already started")
        self._preflight()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        command = self.command()
        with open(self.log_path, "ab") as log_file:
            shown = re.sub(r"(key=)[^\s,]+", r"\1***", " ".join(command))  # keys stay out of logs
            log.info("starting %s (log: %s)", shown, self.log_path)
            self.process = subprocess.Popen(
                command,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                env=self.environment(),
                cwd=self.cwd,
                start_new_session=True,
            )
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise self.error(
                    f"{self.label} exited with code {self.process.returncode} during start-up; "
                    f"last log lines:\n{tail(self.log_path)}"
                )
            if self.is_ready():
                return
            time.sleep(0.5)
        raise self.error(
            f"{self.label} not ready after {timeout:.0f}s; last log lines:\n{tail(self.log_path)}"
        )

    def exit_code(self) -> int | None:
        """The process's exit status once it has ended on its own; None while it runs (or unstarted)."""
        return None if self.process is None else self.process.poll()

    def stop(self, timeout: float = 60.0) -> None:
        """SIGTERM the process (a server drains and ends its workers), then clean the group."""
        if self.process is None:
            return
        stop_process_group(self.process.pid, self.process, timeout)
        self.process = None
        self._after_stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class TritonServer(ManagedServer):
    """A ``tritonserver`` process on ``model_repository``; use as a context manager."""

    label = "tritonserver"
    error = TritonError

    model_repository: Path
    ports: Ports = field(default_factory=Ports)
    log_path: Path = RUN_DIR / "triton.log"
    extra_args: Sequence[str] = ()
    install: TritonInstall | None = None
    process: subprocess.Popen[bytes] | None = None
    # With an admin key, models are under explicit control (all loaded at start) and the
    # repository API answers only to that key: what lets the supervisor reload one broken model.
    admin_key: str | None = None

    @property
    def http_url(self) -> str:
        return f"localhost:{self.ports.http}"

    @property
    def grpc_url(self) -> str:
        return f"localhost:{self.ports.grpc}"

    @property
    def metrics_url(self) -> str:
        return f"http://localhost:{self.ports.metrics}/metrics"

    @property
    def shm_prefix(self) -> str:
        return f"triton_{self.ports.http}_"

    def command(self) -> list[str]:
        install = self.install or locate_triton()
        return [
            str(install.binary),
            f"--model-repository={self.model_repository}",
            f"--backend-directory={install.backends_dir}",
            f"--http-port={self.ports.http}",
            f"--grpc-port={self.ports.grpc}",
            f"--metrics-port={self.ports.metrics}",
            "--allow-gpu-metrics=false",
            "--log-verbose=0",
            "--exit-timeout-secs=10",
            # The Python backend names its shared-memory regions from this prefix; two servers
            # on one machine (tests, benchmarks, a running demo) must not share regions, or
            # one aborts with boost::interprocess::lock_exception while loading models.
            f"--backend-config=python,shm-region-prefix-name={self.shm_prefix}",
            *self.control_args(),
            *self.extra_args,
        ]

    def control_args(self) -> list[str]:
        if not self.admin_key:
            return []
        restricted = f"model-repository:admin-key={self.admin_key}"
        return [
            "--model-control-mode=explicit",
            "--load-model=*",
            f"--http-restricted-api={restricted}",
            f"--grpc-restricted-protocol={restricted}",
        ]

    def _admin(self) -> dict[str, str]:
        return {"admin-key": self.admin_key} if self.admin_key else {}

    def load(self, model: str, timeout: float = 300.0) -> None:
        """Load ``model`` from the repository as it is on disk now (new versions, a changed
        config); the versions it already serves keep serving until the new ones are ready."""
        request = urllib.request.Request(
            f"http://{self.http_url}/v2/repository/models/{model}/load",
            data=b"{}",
            headers=self._admin(),
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=timeout) as resp:
                resp.read()
        except urllib.error.HTTPError as exc:
            reason = exc.read().decode(errors="replace")[:800]
            raise TritonError(f"Triton refused to load {model}: HTTP {exc.code} {reason}") from None

    def reload(self, model: str, timeout: float = 120.0) -> None:
        """Load ``model`` anew, with new instances (and stubs), while the rest keeps serving.

        Triton skips a load whose config is unchanged, so the config is sent back with a
        parameter that marks this reload; the model's behaviour does not read it."""
        base = f"http://{self.http_url}"
        with urllib.request.urlopen(f"{base}/v2/models/{model}/config", timeout=10) as resp:
            config = json.loads(resp.read())
        config.setdefault("parameters", {})["RELOADED_AT"] = {"string_value": f"{time.time():.6f}"}
        body = json.dumps({"parameters": {"config": json.dumps(config)}}).encode()
        request = urllib.request.Request(
            f"{base}/v2/repository/models/{model}/load", data=body, headers=self._admin(), method="POST"
        )
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            resp.read()

    def environment(self) -> dict[str, str]:
        """The stub embeds the system libpython; give it the repo, the server's own packages and
        this interpreter's (on a GPU machine the wheel may be installed apart from torch)."""
        install = self.install or locate_triton()
        env = dict(os.environ)
        paths = [str(REPO_ROOT), str(install.site_packages), sysconfig.get_paths()["purelib"]]
        if env.get("PYTHONPATH"):
            paths.append(env["PYTHONPATH"])
        env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
        env.setdefault("OMP_NUM_THREADS", "1")
        env.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # idle OpenMP threads sleep, not spin
        return env

    def _preflight(self) -> None:
        if not Path(self.model_repository).is_dir():
            raise TritonError(f"model repository {self.model_repository} does not exist; run `make build`")
        for name, port in (
            ("HTTP", self.ports.http),
            ("gRPC", self.ports.grpc),
            ("metrics", self.ports.metrics),
        ):
            if not port_is_free(port):
                raise TritonError(
                    f"{name} port {port} is in use (another Triton? `make stop` or pick other ports)"
                )
        self.install = self.install or locate_triton()
        prepare_python_backend(self.install)

    def _after_stop(self) -> None:
        remove_shm_regions(self.shm_prefix)

    def is_ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.http_url}/v2/health/ready", timeout=2) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def stubs(self) -> dict[str, list[int]]:
        """This server's Python-backend stub processes by model, found by the server's
        shared-memory prefix and the model's ``model.py`` on their command lines."""
        found: dict[str, list[int]] = {}
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            model = re.search(r"/([^/ ]+)/\d+/model\.py", cmdline)
            if "triton_python_backend_stub" in cmdline and self.shm_prefix in cmdline and model:
                found.setdefault(model.group(1), []).append(int(entry.name))
        return found

    def models(self) -> list[dict[str, str]]:
        """Every model of the repository with its state and, when it failed, Triton's reason."""
        return repository_index(f"http://{self.http_url}", self._admin())

    def wait_ready(self, timeout: float) -> None:
        """Ready, and with at least one model loaded: an empty or wholly broken repository is an
        error that names what failed to load, never a server that answers with nothing."""
        super().wait_ready(timeout)
        try:
            models = self.models()
        except urllib.error.HTTPError as exc:  # the repository API is closed to this caller
            log.info("repository index not readable (HTTP %s); readiness alone is checked", exc.code)
            return
        if not any(m.get("state") == "READY" for m in models):
            failed = "; ".join(f"{m['name']}: {m.get('reason') or m.get('state')}" for m in models)
            raise TritonError(
                f"no model of {self.model_repository} is ready ({failed or 'the repository is empty'}); "
                f"run `make build`, then see {self.log_path}"
            )


def repository_index(url: str, headers: dict[str, str] | None = None) -> list[dict[str, str]]:
    """``POST /v2/repository/index``: name, version, state and reason of every model."""
    request = urllib.request.Request(
        f"{url}/v2/repository/index", data=b"{}", headers=headers or {}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        return json.loads(resp.read())


def stop_process_group(
    pid: int, process: subprocess.Popen[bytes] | None = None, timeout: float = 60.0
) -> None:
    """Terminate ``pid`` gracefully, then kill whatever is left in its process group."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None:
            if process.poll() is not None:
                break
        elif not pid_alive(pid):
            break
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    if process is not None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=5)


def remove_shm_regions(prefix: str, shm_dir: Path = Path("/dev/shm")) -> None:
    """Remove shared-memory regions a killed server left behind (a clean stop leaves none)."""
    for region in shm_dir.glob(f"{prefix}*"):
        with contextlib.suppress(OSError):
            region.unlink()


def resident_kib(pids: Sequence[int]) -> int:
    """Resident memory of ``pids`` together, in KiB (``VmRSS`` in /proc; 0 for a gone process)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError, ValueError, IndexError):
            lines = Path(f"/proc/{pid}/status").read_text().splitlines()
            total += int(next(line for line in lines if line.startswith("VmRSS:")).split()[1])
    return total


def memory(state: dict, stubs: dict[str, list[int]]) -> dict[str, int]:
    """Resident KiB of a running ``serve`` (its state file): the server, the front door, and
    each model's stubs together; what ``make status`` shows and the soak records."""
    found = {"tritonserver": resident_kib([state["triton_pid"]])}
    if state.get("front_door_pid"):
        found["front_door"] = resident_kib([state["front_door_pid"]])
    return found | {model: resident_kib(pids) for model, pids in sorted(stubs.items())}


def pid_alive(pid: int) -> bool:
    """Whether ``pid`` runs; a zombie (exited, not yet reaped) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); treat it as gone
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z":
            return False
    return True


def tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
