"""Run the front door, HAProxy with ``k8s/base/front-door/haproxy.cfg``, in front of a local Triton.

Triton 2.51 dies of a few single requests (a ``classification`` parameter on a string output, a
JSON shape too large to allocate, JSON nested 100,000 deep) and holds whatever a client sends
(gzip bombs inflated unbounded, bodies of any size, half-sent requests). The rules that refuse
those are in the config file, which Kubernetes mounts unchanged into the pod's sidecar; this
module starts Debian's ``haproxy`` with it, on the public ports, with Triton on loopback ports
behind it. Why HAProxy: it buffers and inspects request bodies with PCRE and speaks gRPC (HTTP/2)
on both sides in one small, well-kept binary; nginx cannot inspect a body without a scripting
module.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from serving.health import front_door_verdict
from serving.paths import REPO_ROOT, RUN_DIR
from serving.triton import ManagedServer, Ports, port_is_free

CONFIG = REPO_ROOT / "k8s" / "base" / "front-door" / "haproxy.cfg"  # also the pod sidecar's
MAX_BODY_BYTES = 16 * 2**20  # the largest image request the clients send is far smaller


class FrontDoorError(RuntimeError):
    """HAProxy is missing, its ports are taken, or it did not start."""


def locate_haproxy() -> Path:
    found = shutil.which("haproxy", path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin"]))
    if not found:
        raise FrontDoorError("haproxy is not installed: run `make setup` (Debian package haproxy)")
    return Path(found)


@dataclass
class FrontDoor(ManagedServer):
    """``haproxy -db -f k8s/base/front-door/haproxy.cfg`` from ``public`` HTTP/gRPC ports to ``triton``."""

    label = "haproxy"
    error = FrontDoorError

    public: Ports
    triton: Ports
    address: str = "127.0.0.1"  # where the front door listens (0.0.0.0 in a container)
    request_timeout: str = "10s"
    log_path: Path = RUN_DIR / "front-door.log"
    config: Path = CONFIG
    process: subprocess.Popen[bytes] | None = None

    def command(self) -> list[str]:
        return [str(locate_haproxy()), "-db", "-f", str(self.config)]

    def environment(self) -> dict[str, str]:
        return {
            **os.environ,
            "FRONT_DOOR_ADDRESS": self.address,
            "FRONT_DOOR_HTTP_PORT": str(self.public.http),
            "FRONT_DOOR_GRPC_PORT": str(self.public.grpc),
            "TRITON_ADDRESS": "127.0.0.1",
            "TRITON_HTTP_PORT": str(self.triton.http),
            "TRITON_GRPC_PORT": str(self.triton.grpc),
            "MAX_BODY_BYTES": str(MAX_BODY_BYTES),
            "FRONT_DOOR_REQUEST_TIMEOUT": self.request_timeout,
        }

    def _preflight(self) -> None:
        locate_haproxy()
        for name, port in (("HTTP", self.public.http), ("gRPC", self.public.grpc)):
            if not port_is_free(port, self.address):
                raise FrontDoorError(f"{name} port {port} is in use")

    def answers(self, timeout: float = 2.0) -> bool:
        """Whether HAProxy itself answers its own check in time (:func:`front_door_verdict`)."""
        return front_door_verdict(f"127.0.0.1:{self.public.http}", timeout).healthy

    def is_ready(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.public.grpc), timeout=1).close()
        except OSError:
            return False
        return self.answers(timeout=1)
