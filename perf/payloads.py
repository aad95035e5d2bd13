"""Request bodies for the load tests, built once from the workload file (importable without
locust's gevent patching). No request asks for compression: locust's client would ask for gzip,
which Triton honours and ``azmlinfsrv`` ignores, and the comparison must measure scoring."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import tritonclient.http as httpclient

from perf.baseline import FAQ_FIELD, IMAGE_FIELD

SHED = "shed"  # suffix of the locust statistics of requests shed by a queue policy (HTTP 503)
WORKLOAD_ENV, MODEL_ENV = "PERF_WORKLOAD", "PERF_MODEL"
NO_COMPRESSION = {"Accept-Encoding": "identity"}
Bodies = list[tuple[bytes, dict[str, str]]]


def load_workload() -> dict[str, Any]:
    """The questions and image files written by :func:`perf.run.write_inputs`."""
    if not (path := os.environ.get(WORKLOAD_ENV)):
        raise RuntimeError(f"set {WORKLOAD_ENV} to a workload JSON (perf.run.write_inputs)")
    return json.loads(Path(path).read_text())


def triton_binary_body(tensor: str, payload: bytes, batched: bool) -> tuple[bytes, int]:
    """(body, JSON header length) for one BYTES element in Triton's binary extension, built by
    tritonclient itself: byte for byte what ``InferenceServerClient.infer`` sends (binary input
    and, as no outputs are named, ``binary_data_output`` for the answer)."""
    shape = [1, 1] if batched else [1]
    infer_input = httpclient.InferInput(tensor, shape, "BYTES")
    infer_input.set_data_from_numpy(np.array([payload], dtype=object).reshape(shape), binary_data=True)
    body, json_size = httpclient.InferenceServerClient.generate_request_body([infer_input])
    return body, int(json_size or 0)


def triton_model(kind: str) -> str:
    """The Triton model the users call: ``$PERF_MODEL``, else the default for the kind."""
    return os.environ.get(MODEL_ENV) or ("faq_match" if kind == "faq" else "resnet152_pytorch")


def triton_bodies(kind: str) -> Bodies:
    """One request per question or photo of the workload, as ``tritonclient.http`` sends it."""
    from serving.catalog import models_by_name

    spec = models_by_name()[triton_model(kind)]  # the tensor name and batching, from the spec
    workload = load_workload()
    if kind == "faq":
        items = [q.encode("utf-8") for q in workload["questions"]]
    else:
        items = [Path(path).read_bytes() for path in workload["image_files"]]
    bodies = [triton_binary_body(spec.inputs[0].name, item, spec.max_batch_size > 0) for item in items]
    binary = {"Content-Type": "application/octet-stream", **NO_COMPRESSION}
    return [(body, {**binary, "Inference-Header-Content-Length": str(size)}) for body, size in bodies]


def azml_bodies(kind: str) -> Bodies:
    """``POST /score`` bodies for the baseline scoring scripts, one per question or photo."""
    workload, headers = load_workload(), {"Content-Type": "application/json", **NO_COMPRESSION}
    if kind == "faq":
        documents = [{FAQ_FIELD: q} for q in workload["questions"]]
    else:
        images = (Path(p).read_bytes() for p in workload["image_files"])
        documents = [{IMAGE_FIELD: base64.b64encode(b).decode()} for b in images]
    return [(json.dumps(d).encode(), headers) for d in documents]
