"""Request bodies for the load tests, built once from the workload file.

Kept apart from ``perf/locustfile.py`` so that it can be imported (and unit-tested) without
importing locust, whose gevent monkey-patching would change every module of the process.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import tritonclient.http as httpclient

from perf.baseline import FAQ_FIELD, IMAGE_FIELD

SHED = "shed"
"""Suffix of the locust statistics of requests the server shed (HTTP 503, a queue policy)."""
WORKLOAD_ENV = "PERF_WORKLOAD"
MODEL_ENV = "PERF_MODEL"

NO_COMPRESSION = {"Accept-Encoding": "identity"}
"""Sent with every load-test request, to Triton and to the baselines alike. locust's fast client
asks for gzip by default; Triton honours that and compresses each response (and locust inflates
it), while ``azmlinfsrv`` never compresses. tritonclient and the original's clients do not ask
for compression either, so the comparison measures scoring, not zlib."""


def load_workload(path: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """The questions and image files written by :func:`perf.run.write_inputs`."""
    path = path or os.environ.get(WORKLOAD_ENV)
    if not path:
        raise RuntimeError(f"set {WORKLOAD_ENV} to a workload JSON (perf.run.write_inputs)")
    return json.loads(Path(path).read_text())


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


def triton_model(kind: str) -> str:
    """The Triton model the users call: ``$PERF_MODEL``, else the default for the kind."""
    return os.environ.get(MODEL_ENV) or ("faq_match" if kind == "faq" else "resnet152_pytorch")


def triton_bodies(kind: str) -> list[tuple[bytes, dict[str, str]]]:
    """One request per question or photo of the workload, as ``tritonclient.http`` sends it."""
    from serving.catalog import models_by_name

    spec = models_by_name()[triton_model(kind)]  # the tensor name and batching, from the spec
    batched, tensor = spec.max_batch_size > 0, spec.inputs[0].name
    workload = load_workload()
    if kind == "faq":
        items = [q.encode("utf-8") for q in workload["questions"]]
    else:
        items = [Path(path).read_bytes() for path in workload["image_files"]]
    bodies = [triton_binary_body(tensor, item, batched) for item in items]
    return [(body, binary_headers(json_size)) for body, json_size in bodies]


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
