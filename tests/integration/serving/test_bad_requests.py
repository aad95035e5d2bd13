"""Malformed requests to every ensemble, over raw HTTP and gRPC: each is refused as the client's
mistake (HTTP 400 / gRPC INVALID_ARGUMENT) with a reason that says what is wrong, and the server
stays ready. Requests that crash Triton 2.51 itself are not sent here (see docs/deployment.md)."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable

import numpy as np
import pytest
import tritonclient.grpc as grpcclient
from tritonclient.utils import InferenceServerException

from serving.catalog import models_by_name
from serving.triton import TritonServer

ENSEMBLES = [name for name, spec in models_by_name().items() if spec.kind == "ensemble"]
Body = Callable[[str, int], object]  # (input name, max batch size) -> a JSON body, or raw bytes
Phrase = Callable[[str, int], str]


def _one(
    name: str, datatype: str = "BYTES", shape: list[int] | None = None, data: list | None = None
) -> dict:
    return {"inputs": [{"name": name, "datatype": datatype, "shape": shape or [1, 1], "data": data or ["x"]}]}


# (case, body, a phrase the reason must contain), each from (input name, max batch size)
HTTP_CASES: list[tuple[str, Body, Phrase]] = [
    ("json_not_closed", lambda n, b: b'{"inputs": [', lambda n, b: "failed to parse the request JSON buffer"),
    ("inputs_missing", lambda n, b: {"outputs": []}, lambda n, b: "Unable to parse 'inputs'"),
    ("unknown_input", lambda n, b: _one("NOPE"), lambda n, b: "NOPE"),
    ("wrong_datatype", lambda n, b: _one(n, "FP32", data=[1.0]), lambda n, b: "FP32"),
    ("data_does_not_fill_shape", lambda n, b: _one(n, shape=[2, 1]), lambda n, b: "2"),
    ("no_batch_dimension", lambda n, b: _one(n, shape=[1]), lambda n, b: "shape"),
    (
        "batch_above_maximum",
        lambda n, b: _one(n, shape=[b + 1, 1], data=["x"] * (b + 1)),
        lambda n, b: str(b),
    ),
    ("unknown_output", lambda n, b: {**_one(n), "outputs": [{"name": "NOPE"}]}, lambda n, b: "NOPE"),
    ("empty_content", lambda n, b: _one(n, data=[""]), lambda n, b: f"{n}[0]"),
    ("content_without_meaning", lambda n, b: _one(n, data=["<p></p>"]), lambda n, b: f"{n}[0]"),
]


# Triton 2.51's HTTP frontend answers these two itself with 500 before any model sees them; the
# reason is clear, the server stays up, and nothing of ours can change the code (docs/architecture.md).
TRITON_OWN_500 = {"json_not_closed", "inputs_missing"}


def _post(url: str, body: object) -> tuple[int, str]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


@pytest.mark.parametrize("model", ENSEMBLES)
@pytest.mark.parametrize(("case", "body", "phrase"), HTTP_CASES, ids=[c[0] for c in HTTP_CASES])
def test_raw_http(triton_server: TritonServer, model: str, case: str, body: Body, phrase: Phrase) -> None:
    spec = models_by_name()[model]
    name, batch = spec.inputs[0].name, spec.max_batch_size
    status, text = _post(f"http://{triton_server.http_url}/v2/models/{model}/infer", body(name, batch))
    reason = json.loads(text)["error"]
    assert status == (500 if case in TRITON_OWN_500 else 400), (status, reason)
    assert phrase(name, batch) in reason, reason
    assert triton_server.is_ready()


def _grpc_infer(server: TritonServer, model: str, name: str, datatype: str, array: np.ndarray) -> str:
    client = grpcclient.InferenceServerClient(server.grpc_url)
    try:
        tensor = grpcclient.InferInput(name, list(array.shape), datatype)
        tensor.set_data_from_numpy(array)
        with pytest.raises(InferenceServerException) as info:
            client.infer(model, [tensor])
        assert info.value.status() == "StatusCode.INVALID_ARGUMENT", info.value
        return info.value.message()
    finally:
        client.close()


GRPC_CASES = {
    "unknown_input": lambda n, b: ("NOPE", "BYTES", np.array([[b"x"]], dtype=object), "NOPE"),
    "wrong_datatype": lambda n, b: (n, "FP32", np.zeros((1, 1), np.float32), "FP32"),
    "batch_above_maximum": lambda n, b: (n, "BYTES", np.array([[b"x"]] * (b + 1), dtype=object), str(b)),
    "empty_content": lambda n, b: (n, "BYTES", np.array([[b""]], dtype=object), f"{n}[0]"),
    "invalid_bytes": lambda n, b: (n, "BYTES", np.array([[b"\xff\xfe\x00"]], dtype=object), f"{n}[0]"),
}


@pytest.mark.parametrize("model", ENSEMBLES)
@pytest.mark.parametrize("case", list(GRPC_CASES))
def test_grpc(triton_server: TritonServer, model: str, case: str) -> None:
    spec = models_by_name()[model]
    name, datatype, array, phrase = GRPC_CASES[case](spec.inputs[0].name, spec.max_batch_size)
    reason = _grpc_infer(triton_server, model, name, datatype, array)
    assert phrase in reason, reason
    assert triton_server.is_ready()


def test_there_are_at_least_sixty_cases() -> None:
    assert len(ENSEMBLES) * (len(HTTP_CASES) + len(GRPC_CASES)) >= 60
