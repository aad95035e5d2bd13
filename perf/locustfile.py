"""HTTP load on Triton and on the Azure ML scoring server, with real questions and photos.

Run headless through :mod:`perf.locust_runner` (or by hand)::

    PERF_WORKLOAD=perf/out/workload.json PERF_MODEL=faq_match \\
      .venv/bin/locust -f perf/locustfile.py TritonFaqUser --headless -u 8 -r 8 -t 20s \\
      --csv perf/out/locust_faq --host http://127.0.0.1:8000

User classes (name one on the command line):

* ``TritonFaqUser``: ``POST /v2/models/$PERF_MODEL/infer`` with one question (KServe v2 JSON);
* ``TritonImageUser``: the same with one encoded image, in Triton's binary tensor extension
  (JSON header + raw bytes: no base64 on the wire);
* ``AzmlFaqUser``: ``POST /score`` with ``{"question": ...}`` (the original's client);
* ``AzmlImageUser``: ``POST /score`` with ``{"image": "<base64>"}``.

Every user is a closed loop with no think time, like one perf_analyzer concurrency slot. A
response counts as a failure unless it is HTTP 200 with the expected fields, so an error
page can never pass for throughput.
"""

from __future__ import annotations

import base64
import itertools
import json
import os
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import tritonclient.http as httpclient
from locust import constant, task
from locust.contrib.fasthttp import FastHttpUser

WORKLOAD_ENV = "PERF_WORKLOAD"
MODEL_ENV = "PERF_MODEL"
FAQ_FIELD = "question"  # perf.baseline.FAQ_FIELD (kept import-free: locust loads this file alone)
IMAGE_FIELD = "image"


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
    """(body, JSON header length) for one BYTES element in Triton's binary extension."""
    shape = [1, 1] if batched else [1]
    infer_input = httpclient.InferInput(tensor, shape, "BYTES")
    infer_input.set_data_from_numpy(np.array([payload], dtype=object).reshape(shape), binary_data=True)
    body, json_size = httpclient.InferenceServerClient.generate_request_body([infer_input])
    return body, int(json_size or 0)


def model_config(host: str, model: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{host.rstrip('/')}/v2/models/{model}/config", timeout=10) as resp:
        return json.loads(resp.read())


class _Shared:
    """Request bodies built once per process, shared by every simulated user."""

    lock = threading.Lock()
    bodies: ClassVar[dict[str, list[tuple[bytes, dict[str, str]]]]] = {}
    cycles: ClassVar[dict[str, Iterator[tuple[bytes, dict[str, str]]]]] = {}

    @classmethod
    def get(cls, key: str, build: Any) -> tuple[bytes, dict[str, str]]:
        with cls.lock:
            if key not in cls.cycles:
                cls.bodies[key] = build()
                if not cls.bodies[key]:
                    raise RuntimeError(f"workload has no data for {key}")
                cls.cycles[key] = itertools.cycle(cls.bodies[key])
            return next(cls.cycles[key])


def _triton_bodies(host: str, kind: str) -> list[tuple[bytes, dict[str, str]]]:
    model = os.environ.get(MODEL_ENV) or ("faq_match" if kind == "faq" else "resnet152_pytorch")
    config = model_config(host, model)
    batched = int(config.get("max_batch_size", 0)) > 0
    tensor = config["input"][0]["name"]
    workload = load_workload()
    if kind == "faq":
        headers = {"Content-Type": "application/json"}
        return [(triton_text_body(tensor, q, batched), headers) for q in workload["questions"]]
    bodies = []
    for path in workload["image_files"]:
        body, json_size = triton_binary_body(tensor, Path(path).read_bytes(), batched)
        headers = {
            "Content-Type": "application/octet-stream",
            "Inference-Header-Content-Length": str(json_size),
        }
        bodies.append((body, headers))
    return bodies


def _azml_bodies(kind: str) -> list[tuple[bytes, dict[str, str]]]:
    workload = load_workload()
    headers = {"Content-Type": "application/json"}
    if kind == "faq":
        return [(json.dumps({FAQ_FIELD: q}).encode(), headers) for q in workload["questions"]]
    return [
        (json.dumps({IMAGE_FIELD: base64.b64encode(Path(p).read_bytes()).decode()}).encode(), headers)
        for p in workload["image_files"]
    ]


class _LoadUser(FastHttpUser):
    abstract = True
    wait_time = constant(0)
    network_timeout = 120.0
    connection_timeout = 30.0
    kind = "faq"
    expect: bytes = b""

    def body(self) -> tuple[bytes, dict[str, str]]:
        raise NotImplementedError

    def path(self) -> str:
        raise NotImplementedError

    def post(self, name: str) -> None:
        data, headers = self.body()
        with self.client.post(
            self.path(), data=data, headers=headers, name=name, catch_response=True
        ) as resp:
            content = resp.content or b""
            if resp.status_code != 200:
                resp.failure(f"HTTP {resp.status_code}: {content[:200]!r}")
            elif self.expect not in content:
                resp.failure(f"response without {self.expect!r}: {content[:200]!r}")
            else:
                resp.success()


class _TritonUser(_LoadUser):
    abstract = True
    expect = b'"outputs"'

    def path(self) -> str:
        model = os.environ.get(MODEL_ENV) or ("faq_match" if self.kind == "faq" else "resnet152_pytorch")
        return f"/v2/models/{model}/infer"

    def body(self) -> tuple[bytes, dict[str, str]]:
        return _Shared.get(f"triton-{self.kind}", lambda: _triton_bodies(self.host, self.kind))


class _AzmlUser(_LoadUser):
    abstract = True

    def path(self) -> str:
        return "/score"

    def body(self) -> tuple[bytes, dict[str, str]]:
        return _Shared.get(f"azml-{self.kind}", lambda: _azml_bodies(self.kind))


class TritonFaqUser(_TritonUser):
    kind = "faq"

    @task
    def ask(self) -> None:
        self.post("triton faq")


class TritonImageUser(_TritonUser):
    kind = "image"

    @task
    def classify(self) -> None:
        self.post("triton image")


class AzmlFaqUser(_AzmlUser):
    kind = "faq"
    expect = b"faq_id"

    @task
    def ask(self) -> None:
        self.post("azmlinfsrv faq")


class AzmlImageUser(_AzmlUser):
    kind = "image"
    expect = b"class_id"

    @task
    def classify(self) -> None:
        self.post("azmlinfsrv image")
