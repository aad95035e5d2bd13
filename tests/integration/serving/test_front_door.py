"""The front door (HAProxy, k8s/base/front-door/haproxy.cfg) in front of the session's Triton: the
requests that kill Triton 2.51 get a clear 4xx over HTTP and gRPC and the server stays up; slow
and half-sent requests are cut off; ordinary requests pass unchanged; the door's own check
tells a frozen door from a live one."""

from __future__ import annotations

import gzip
import http.client
import json
import os
import signal
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
from tritonclient.utils import InferenceServerException

from export.build_repository import build
from imaging.samples import sample_bytes
from serving import health
from serving.front_door import FrontDoor
from serving.triton import Ports, TritonServer, free_ports

QUESTION = b"how do I clone an object in javascript"
TIMEOUT_S = 2


def door_for(server: TritonServer, tmp_path: Path) -> FrontDoor:
    public = Ports(*free_ports(2), 0)
    return FrontDoor(
        public, server.ports, request_timeout=f"{TIMEOUT_S}s", log_path=tmp_path / "front-door.log"
    )


@pytest.fixture(scope="module")
def door(triton_server: TritonServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FrontDoor]:
    with door_for(triton_server, tmp_path_factory.mktemp("front-door")) as started:
        yield started


def _json(question: str = "how do I clone an object", **extra: object) -> bytes:
    inputs = [{"name": "TEXT", "shape": [1, 1], "datatype": "BYTES", "data": [[question]]}]
    return json.dumps({"inputs": inputs, **extra}).encode()


def _post(
    port: int, body: bytes, headers: dict[str, str] | None = None, model: str = "faq_match"
) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    connection.request(
        "POST",
        f"/v2/models/{model}/infer",
        body=body,
        headers=headers or {"Content-Type": "application/json"},
    )
    response = connection.getresponse()
    return response.status, response.read()[:300].decode(errors="replace")


def _faq_ids(client: object, grpc: bool = False) -> list[int]:
    module = grpcclient if grpc else httpclient
    text = module.InferInput("TEXT", [1, 1], "BYTES")
    text.set_data_from_numpy(np.array([[QUESTION]], dtype=object))
    return client.infer("faq_match", [text]).as_numpy("FAQ_ID")[0].tolist()  # type: ignore[attr-defined]


# (case, body, headers, status, a phrase of the reason). Each of the first five ends Triton 2.51
# when sent to it directly (a divide error, std::length_error, std::bad_alloc, a segfault).
HTTP_REFUSED = [
    (
        "classification",
        _json(outputs=[{"name": "FAQ_QUESTION", "parameters": {"classification": 2}}]),
        None,
        400,
        "classification",
    ),
    (
        "shape_2_64",
        json.dumps(
            {
                "inputs": [
                    {"name": "TEXT", "shape": [18446744073709551615, 1], "datatype": "BYTES", "data": [["x"]]}
                ]
            }
        ).encode(),
        None,
        400,
        "shape",
    ),
    (
        "shape_2_40_fp64",
        json.dumps(
            {"inputs": [{"name": "TEXT", "shape": [1099511627776, 1], "datatype": "FP64", "data": [1.0]}]}
        ).encode(),
        None,
        400,
        "shape",
    ),
    (
        "nested_40_deep",
        b'{"inputs":[{"name":"TEXT","shape":[1,1],"datatype":"BYTES","data":'
        + b"[" * 40
        + b'"x"'
        + b"]" * 40
        + b"}]}",
        None,
        400,
        "nested",
    ),
    (
        "nested_100000_deep",
        b'{"inputs":[{"name":"TEXT","shape":[1,1],"datatype":"BYTES","data":'
        + b"[" * 100_000
        + b"]" * 100_000
        + b"}]}",
        None,
        413,
        "64 KB",
    ),
    (
        "gzip_bomb",
        gzip.compress(b" " * 50_000_000),
        {"Content-Type": "application/json", "Content-Encoding": "gzip"},
        415,
        "compressed",
    ),
    ("json_over_64_kb", _json("x" * 70_000), None, 413, "64 KB"),
    (
        "binary_header_over_64_kb",
        b" " * 70_000,
        {"Inference-Header-Content-Length": "70000"},
        413,
        "JSON header",
    ),
    ("json_not_closed", b'{"inputs": [', None, 400, "failed to parse"),
    ("inputs_missing", b'{"outputs": []}', None, 400, "inputs"),
]


@pytest.mark.parametrize(
    ("case", "body", "headers", "status", "reason"), HTTP_REFUSED, ids=[c[0] for c in HTTP_REFUSED]
)
def test_what_triton_cannot_survive_is_refused_over_http(
    door: FrontDoor,
    triton_server: TritonServer,
    case: str,
    body: bytes,
    headers: dict | None,
    status: int,
    reason: str,
) -> None:
    pid = triton_server.process.pid
    got, text = _post(door.public.http, body, headers)
    assert (got, reason.lower() in text.lower()) == (status, True), text
    assert _post(door.public.http, _json())[0] == 200
    assert triton_server.process.pid == pid and triton_server.process.poll() is None


def test_a_body_over_the_limit_is_refused_before_it_is_sent(door: FrontDoor) -> None:
    with socket.create_connection(("127.0.0.1", door.public.http), timeout=10) as sock:
        sock.sendall(
            b"POST /v2/models/faq_match/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 1073741824\r\n\r\n"
        )
        assert sock.recv(200).startswith(b"HTTP/1.1 413")


def test_a_chunked_body_without_length_is_refused(door: FrontDoor) -> None:
    with socket.create_connection(("127.0.0.1", door.public.http), timeout=10) as sock:
        sock.sendall(
            b"POST /v2/models/faq_match/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        assert sock.recv(200).startswith(b"HTTP/1.1 411")


def test_slow_and_half_sent_requests_are_cut_off(door: FrontDoor) -> None:
    sockets = []
    for _ in range(100):
        sock = socket.create_connection(("127.0.0.1", door.public.http), timeout=TIMEOUT_S + 5)
        sock.sendall(b"POST /v2/models/faq_match/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
        sockets.append(sock)
    started = time.monotonic()
    answers = [sock.recv(200) for sock in sockets]  # 408, then the connection closes
    assert time.monotonic() - started < TIMEOUT_S + 3
    assert all(answer.startswith(b"HTTP/1.1 408") for answer in answers), answers[:3]
    for sock in sockets:
        sock.close()


def test_ordinary_requests_pass_unchanged(door: FrontDoor, triton_server: TritonServer) -> None:
    direct = httpclient.InferenceServerClient(triton_server.http_url)
    assert _faq_ids(httpclient.InferenceServerClient(f"127.0.0.1:{door.public.http}")) == _faq_ids(direct)
    assert _faq_ids(grpcclient.InferenceServerClient(f"127.0.0.1:{door.public.grpc}"), grpc=True) == _faq_ids(
        direct
    )
    image = httpclient.InferInput("IMAGE", [1, 1], "BYTES")
    image.set_data_from_numpy(np.array([[sample_bytes("chelsea")]], dtype=object))  # a binary body over 64 KB
    through = httpclient.InferenceServerClient(f"127.0.0.1:{door.public.http}").infer(
        "efficientnet_lite0", [image]
    )
    assert (
        through.as_numpy("LABEL")[0][0] == direct.infer("efficientnet_lite0", [image]).as_numpy("LABEL")[0][0]
    )


def test_grpc_refusals_are_invalid_argument_and_the_server_stays_up(
    door: FrontDoor, triton_server: TritonServer
) -> None:
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{door.public.grpc}")
    text = grpcclient.InferInput("TEXT", [1, 1], "BYTES")
    text.set_data_from_numpy(np.array([[QUESTION]], dtype=object))
    with pytest.raises(InferenceServerException, match="classification parameter is not accepted") as refused:
        client.infer(
            "faq_match", [text], outputs=[grpcclient.InferRequestedOutput("FAQ_QUESTION", class_count=2)]
        )
    assert refused.value.status() == "StatusCode.INVALID_ARGUMENT"
    with pytest.raises(InferenceServerException, match="compressed") as compressed:
        client.infer("faq_match", [text], compression_algorithm="gzip")
    assert compressed.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert len(_faq_ids(client, grpc=True)) == 5 and triton_server.process.poll() is None


def test_the_classification_request_kills_a_bare_triton_and_not_one_behind_the_door(tmp_path: Path) -> None:
    """Why the door exists: the same request, straight to a Triton of its own, ends it."""
    repository = tmp_path / "repository"
    build("cpu", repository, only=["faq_match"], with_steps=True)
    body = HTTP_REFUSED[0][1]
    bare = TritonServer(repository, Ports.free(), log_path=tmp_path / "triton.log")
    with bare, door_for(bare, tmp_path) as door:
        assert _post(door.public.http, body)[0] == 400
        assert bare.process.poll() is None
        with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
            _post(bare.ports.http, body)
        bare.process.wait(timeout=30)
        assert bare.process.returncode != 0


def test_the_model_repository_api_is_not_served_through_the_door(door: FrontDoor) -> None:
    connection = http.client.HTTPConnection("127.0.0.1", door.public.http, timeout=10)
    connection.request("POST", "/v2/repository/models/faq_match/unload", body=b"{}")
    response = connection.getresponse()
    assert (response.status, b"repository API" in response.read()) == (403, True)
    client = grpcclient.InferenceServerClient(f"127.0.0.1:{door.public.grpc}")
    with pytest.raises(InferenceServerException, match="repository API") as refused:
        client.unload_model("faq_match")
    assert refused.value.status() == "StatusCode.PERMISSION_DENIED"
    assert client.is_model_ready("faq_match")


def test_its_own_check_is_answered_by_haproxy_alone(tmp_path: Path) -> None:
    """``/front-door/alive`` is HAProxy's own answer (the supervisor's and the pod's probe of the
    door): 200 with nothing behind it, where a forwarded request fails; a frozen HAProxy fails it
    although its port still accepts connections."""
    nothing = Ports(*free_ports(3))  # no Triton listens here
    with FrontDoor(Ports(*free_ports(2), 0), nothing, log_path=tmp_path / "front-door.log") as door:
        assert door.answers()
        connection = http.client.HTTPConnection("127.0.0.1", door.public.http, timeout=10)
        connection.request("GET", "/v2/health/ready")
        assert connection.getresponse().status == 503  # forwarded: no server behind the door
        os.kill(door.process.pid, signal.SIGSTOP)
        try:
            socket.create_connection(("127.0.0.1", door.public.http), timeout=1).close()
            assert not door.answers(timeout=1)
        finally:
            os.kill(door.process.pid, signal.SIGCONT)
        assert door.answers()


def test_the_probe_of_a_container_with_its_door_fails_while_the_door_is_frozen(
    door: FrontDoor, triton_server: TritonServer
) -> None:
    """Azure ML's probe route (`serving.health --serve ... --front-door`): the deep check of Triton
    behind the door and the door's own check; a frozen door fails it (503) although Triton is fine."""
    probe = health.serve(0, triton_server.http_url, timeout=3, front_door=f"127.0.0.1:{door.public.http}")
    threading.Thread(target=probe.serve_forever, daemon=True).start()

    def status() -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{probe.server_port}/live", timeout=60) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    try:
        healthy = status()
        os.kill(door.process.pid, signal.SIGSTOP)
        try:
            frozen = status()
        finally:
            os.kill(door.process.pid, signal.SIGCONT)
    finally:
        probe.shutdown()
    assert healthy[0] == 200 and "ok (front door)" in healthy[1] and "ok faq_match" in healthy[1], healthy
    assert frozen[0] == 503 and "FAIL (front door)" in frozen[1] and "ok faq_match" in frozen[1], frozen
