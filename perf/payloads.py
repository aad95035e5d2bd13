"""Request bodies for the load tests, built once from the workload file.

Kept apart from ``perf/locustfile.py`` so that it can be imported (and unit-tested) without
importing locust, whose gevent monkey-patching would change every module of the process.
"""

from __future__ import annotations

import base64
import json
import os
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import tritonclient.http as httpclient

from perf.baseline import FAQ_FIELD, IMAGE_FIELD

WORKLOAD_ENV = "PERF_WORKLOAD"
MODEL_ENV = "PERF_MODEL"

NO_COMPRESSION = {"Accept-Encoding": "identity"}
"""Sent with every load-test request, to Triton and to the baselines alike. locust's fast client
asks for gzip by default; Triton honours that and compresses each response (and locust inflates
it), while ``azmlinfsrv`` never compresses. tritonclient and the original's clients do not ask
for compression either, so the comparison measures scoring, not zlib."""

WIRE_FORMATS = ("binary", "json")
"""How a Triton user encodes tensors: ``binary`` is what ``tritonclient.http`` sends by default
(raw tensor bytes after a JSON header, binary outputs); ``json`` is plain KServe v2 JSON, as a
client with only an HTTP library would write it."""


def load_workload(path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The questions and image files written by :func:`perf.workloads.write_workload`."""
    path = path or os.environ.get(WORKLOAD_ENV)
    if not path:
        raise RuntimeError(f"set {WORKLOAD_ENV} to a workload JSON (perf.workloads.write_workload)")
    return json.loads(Path(path).read_text())


def triton_text_body(tensor: str, text: str, batched: bool) -> bytes:
    """KServe v2 JSON request with one string element."""
    shape = [1, 1] if batched else [1]
    body = {"inputs": [{"name": tensor, "shape": shape, "datatype": "BYTES", "data": [text]}]}
    return json.dumps(body).encode()


def triton_binary_body(tensor: str, payload: bytes, batched: bool) -> tuple[bytes, int]:
    """(body, JSON header length) for one BYTES element in Triton's binary extension.

    Built by tritonclient itself, so it is byte for byte what ``InferenceServerClient.infer``
    sends: binary input and, as no outputs are named, ``binary_data_output`` for the answer.
    """
    shape = [1, 1] if batched else [1]
    infer_input = httpclient.InferInput(tensor, shape, "BYTES")
    infer_input.set_data_from_numpy(np.array([payload], dtype=object).reshape(shape), binary_data=True)
    body, json_size = httpclient.InferenceServerClient.generate_request_body([infer_input])
    return body, int(json_size or 0)


def binary_headers(json_size: int) -> dict[str, str]:
    return {
        "Content-Type": "application/octet-stream",
        "Inference-Header-Content-Length": str(json_size),
        **NO_COMPRESSION,
    }


def model_config(host: str, model: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{host.rstrip('/')}/v2/models/{model}/config", timeout=10) as resp:
        return json.loads(resp.read())


def triton_model(kind: str) -> str:
    """The Triton model the users call: ``$PERF_MODEL``, else the default for the kind."""
    return os.environ.get(MODEL_ENV) or ("faq_match" if kind == "faq" else "resnet152_pytorch")


def triton_bodies(host: str, kind: str, wire: str = "binary") -> list[tuple[bytes, dict[str, str]]]:
    """One request per question or photo of the workload, in the ``wire`` format.

    Photos always go binary: base64 in JSON would only measure the encoder.
    """
    if wire not in WIRE_FORMATS:
        raise ValueError(f"wire format {wire!r}: expected one of {WIRE_FORMATS}")
    model = triton_model(kind)
    config = model_config(host, model)
    batched = int(config.get("max_batch_size", 0)) > 0
    tensor = config["input"][0]["name"]
    workload = load_workload()
    if kind == "faq" and wire == "json":
        headers = {"Content-Type": "application/json", **NO_COMPRESSION}
        return [(triton_text_body(tensor, q, batched), headers) for q in workload["questions"]]
    items = (
        [q.encode("utf-8") for q in workload["questions"]]
        if kind == "faq"
        else [Path(path).read_bytes() for path in workload["image_files"]]
    )
    bodies = []
    for item in items:
        body, json_size = triton_binary_body(tensor, item, batched)
        bodies.append((body, binary_headers(json_size)))
    return bodies


def azml_bodies(kind: str, workload: dict[str, Any] | None = None) -> list[tuple[bytes, dict[str, str]]]:
    """``POST /score`` bodies for the baseline scoring scripts, one per question or photo."""
    workload = workload if workload is not None else load_workload()
    headers = {"Content-Type": "application/json", **NO_COMPRESSION}
    if kind == "faq":
        return [(json.dumps({FAQ_FIELD: q}).encode(), headers) for q in workload["questions"]]
    return [
        (json.dumps({IMAGE_FIELD: base64.b64encode(Path(p).read_bytes()).decode()}).encode(), headers)
        for p in workload["image_files"]
    ]


def warm_up(url: str, bodies: list[tuple[bytes, dict[str, str]]], count: int, timeout: float = 300.0) -> int:
    """POST ``count`` bodies (cycling) to ``url`` before measuring; returns how many answered 200.

    The first requests to a fresh server pay for lazy initialisation (allocations, kernel
    selection, imports on first use); a measurement should not.
    """
    ok = 0
    for i in range(count):
        data, headers = bodies[i % len(bodies)]
        request = urllib.request.Request(url, data=data, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=timeout) as resp:
                resp.read()
                ok += resp.status == 200
        except OSError:
            continue
    return ok
