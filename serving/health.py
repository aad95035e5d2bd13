"""A deep health check: every ensemble answers a tiny real request through all its steps.

``/v2/health/live`` and ``/v2/health/ready`` keep answering 200 while a dead Python-backend stub
makes every request of its ensemble fail (Triton 2.51 never replaces the stub), so a probe on
them keeps a broken pod in service forever. This check sends one real request per ensemble
(a question, or a small JPEG) with a bounded timeout and fails if any answer is not a 200 with
outputs. It is the Kubernetes liveness and readiness probe and what a supervisor watches::

    python -m serving.health --url localhost:8000 [--timeout 4]     # exit 0 healthy, 1 not

It needs nothing but the standard library (it runs in the serving container, which has no
tritonclient) and learns the ensembles from the server (repository index, model configs), so a
model added to the catalogue is checked without touching this file. API keys come from
``TRITON_API_KEY`` (inference, configs) and ``TRITON_ADMIN_KEY`` (repository index), as the
Kubernetes manifests pass them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import struct
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

WARMUP_IMAGE = Path(__file__).resolve().parent.parent / "imaging" / "data" / "warmup_image.bin"
QUESTION = b"how do I copy an array in javascript"
FRONT_DOOR_CHECK = "/front-door/alive"  # answered by HAProxy itself (monitor-uri), never forwarded


@dataclass(frozen=True)
class Verdict:
    model: str
    healthy: bool
    detail: str
    seconds: float


def probe_payload(input_name: str) -> bytes | None:
    """One BYTES element for an ensemble input, by its name: a question or a small JPEG."""
    if input_name == "TEXT":
        return QUESTION
    if input_name == "IMAGE":
        blob = WARMUP_IMAGE.read_bytes()  # Triton's BYTES layout: 4-byte length, then the JPEG
        return blob[4 : 4 + struct.unpack("<I", blob[:4])[0]]
    return None


def _request(url: str, body: bytes | None, headers: dict[str, str], timeout: float) -> bytes:
    request = urllib.request.Request(
        url, data=body, headers=headers, method="POST" if body is not None else "GET"
    )
    with urllib.request.urlopen(request, timeout=timeout) as resp:
        return resp.read()


def ensembles(base: str, timeout: float, admin_key: str | None = None) -> list[tuple[str, str]]:
    """``(ensemble, its input name)`` for every ready ensemble with one BYTES input."""
    admin_key = admin_key or os.environ.get("TRITON_ADMIN_KEY")
    admin = {"admin-key": admin_key} if admin_key else {}
    key = {"api-key": os.environ["TRITON_API_KEY"]} if os.environ.get("TRITON_API_KEY") else {}
    index = json.loads(_request(f"{base}/v2/repository/index", b"{}", admin, timeout))
    found = []
    for entry in index:
        if entry.get("state") != "READY":
            continue
        config = json.loads(_request(f"{base}/v2/models/{entry['name']}/config", None, key, timeout))
        inputs = config.get("input", [])
        if (
            config.get("platform") == "ensemble"
            and len(inputs) == 1
            and inputs[0]["data_type"] == "TYPE_STRING"
        ):
            found.append((entry["name"], inputs[0]["name"]))
    return found


def check_one(base: str, model: str, input_name: str, timeout: float) -> Verdict:
    """One request through ``model``'s steps, in Triton's binary format (a JPEG is not JSON)."""
    payload = probe_payload(input_name)
    if payload is None:
        return Verdict(model, True, f"no probe for input {input_name}; not checked", 0.0)
    element = struct.pack("<I", len(payload)) + payload
    shape = [1, 1]
    header = {
        "inputs": [
            {
                "name": input_name,
                "shape": shape,
                "datatype": "BYTES",
                "parameters": {"binary_data_size": len(element)},
            }
        ]
    }
    head = json.dumps(header).encode()
    headers = {"Inference-Header-Content-Length": str(len(head)), "Content-Type": "application/octet-stream"}
    if os.environ.get("TRITON_API_KEY"):
        headers["api-key"] = os.environ["TRITON_API_KEY"]
    started = time.perf_counter()
    try:
        answer = _request(f"{base}/v2/models/{model}/infer", head + element, headers, timeout)
        healthy, detail = b'"outputs"' in answer, "answered"
    except urllib.error.HTTPError as exc:
        healthy, detail = False, f"HTTP {exc.code}: {exc.read()[:300].decode(errors='replace')}"
    except OSError as exc:  # refused, reset, timed out
        healthy, detail = False, f"{type(exc).__name__}: {exc}"
    return Verdict(model, healthy, detail, time.perf_counter() - started)


def check(url: str, timeout: float = 4.0, admin_key: str | None = None) -> list[Verdict]:
    """A verdict per ensemble, all probed at once; an unreachable server is one failed verdict.
    ``admin_key`` reads the repository index where it is closed (else ``$TRITON_ADMIN_KEY``)."""
    base = url if "://" in url else f"http://{url}"
    try:
        models = ensembles(base, timeout, admin_key)
    except (OSError, ValueError) as exc:
        return [Verdict("(server)", False, f"{type(exc).__name__}: {exc}", 0.0)]
    if not models:
        return [Verdict("(server)", False, "no ensemble is ready", 0.0)]
    with ThreadPoolExecutor(len(models)) as pool:
        return list(pool.map(lambda m: check_one(base, *m, timeout), models))


def front_door_verdict(address: str, timeout: float = 2.0) -> Verdict:
    """The front door's own check: HAProxy answers it without Triton. A frozen HAProxy fails it
    although the kernel still accepts connections on its port (a TCP probe would pass)."""
    base = address if "://" in address else f"http://{address}"
    started = time.perf_counter()
    try:
        _request(f"{base}{FRONT_DOOR_CHECK}", None, {}, timeout)
        healthy, detail = True, "answered"
    except OSError as exc:  # refused, timed out, not 200
        healthy, detail = False, f"{type(exc).__name__}: {exc}"
    return Verdict("(front door)", healthy, detail, time.perf_counter() - started)


def healthy_after(
    server: Callable[[], tuple[str, str | None]], within_s: float, since: float | None = None
) -> float | None:
    """Seconds from ``since`` (default: now, on ``time.monotonic``) until every ensemble passes
    :func:`check` again, or None after ``within_s``. ``server`` returns ``(url, admin key)`` and
    is asked each time, as a restart may move what it reads (a state file being rewritten)."""
    since = time.monotonic() if since is None else since
    while time.monotonic() - since < within_s:
        with contextlib.suppress(OSError, ValueError, KeyError):
            url, admin_key = server()
            if all(v.healthy for v in check(url, 5, admin_key)):
                return time.monotonic() - since
        time.sleep(0.5)
    return None


def serve(port: int, url: str, timeout: float, front_door: str | None = None) -> ThreadingHTTPServer:
    """An HTTP server whose every GET runs the deep check (and, with ``front_door``, the door's
    own check): 200 when each answers, else 503 with the failures, one per line. For platforms
    whose probes can only GET a path (Azure ML online deployments, where the door runs in the same
    container and nothing else would notice it gone); Kubernetes runs the command below as an exec
    probe instead, and probes the door's sidecar itself."""

    class Probe(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            verdicts = check(url, timeout) + ([front_door_verdict(front_door, timeout)] if front_door else [])
            healthy = all(v.healthy for v in verdicts)
            lines = (f"{'ok' if v.healthy else 'FAIL'} {v.model}: {v.detail}\n" for v in verdicts)
            body = "".join(lines).encode()
            self.send_response(200 if healthy else 503)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:  # probes every few seconds: no access log
            pass

    return ThreadingHTTPServer(("0.0.0.0", port), Probe)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serving.health", description=__doc__.split("\n")[0])
    parser.add_argument("--url", default="localhost:8000", help="Triton's HTTP address")
    parser.add_argument("--timeout", type=float, default=4.0, help="seconds per request")
    parser.add_argument("--serve", type=int, metavar="PORT", help="answer HTTP probes on PORT instead")
    parser.add_argument("--front-door", metavar="ADDRESS", help="with --serve: also the door's own check")
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve, args.url, args.timeout, args.front_door).serve_forever()
        return 0
    verdicts = check(args.url, args.timeout)
    for v in verdicts:
        print(f"{'ok  ' if v.healthy else 'FAIL'} {v.model:<28} {v.seconds * 1000:7.1f} ms  {v.detail}")
    return 0 if all(v.healthy for v in verdicts) else 1


if __name__ == "__main__":
    sys.exit(main())
