"""Azure ML scoring script for image baseline (c): ResNet-152 in eager PyTorch (the project's
network and weights, ``$RESNET152_PYTORCH_WEIGHTS`` or the export's seeded random ones), PIL
preprocessing, one image per request. ``run()`` takes ``{"image": "<base64>"}``."""

from __future__ import annotations

import base64
import binascii
import json
import os
import sys
from pathlib import Path
from typing import Any

_REPO_ROOT = Path(__file__).resolve().parents[2]
if str(_REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(_REPO_ROOT))

import torch  # noqa: E402
from azureml_inference_server_http.api.aml_response import AMLResponse  # noqa: E402

from imaging.labels import imagenet_labels  # noqa: E402
from imaging.networks import RESNET152_PYTORCH, TOP_K  # noqa: E402
from imaging.postprocess import top_k  # noqa: E402
from imaging.preprocess import ImageError, preprocess_bytes  # noqa: E402
from perf.baseline import IMAGE_FIELD  # noqa: E402

THREADS_ENV = "BASELINE_TORCH_THREADS"  # default: PyTorch's own choice (all cores)
model: torch.nn.Module | None = None
labels: tuple[str, ...] = ()


def init() -> None:
    global model, labels
    from export.resnet_torch import WEIGHTS_ENV, build_model

    if os.environ.get(THREADS_ENV):
        torch.set_num_threads(int(os.environ[THREADS_ENV]))
    weights = os.environ.get(WEIGHTS_ENV)
    model = build_model(Path(weights) if weights else None)
    labels = imagenet_labels()
    with torch.inference_mode():  # first call allocates; keep it out of the measurements
        model(torch.zeros(1, *RESNET152_PYTORCH.input_dims))


def run(raw_data: str) -> dict[str, Any] | AMLResponse:
    if model is None:
        raise RuntimeError("init() has not run")
    try:
        body = json.loads(raw_data)
        encoded = body[IMAGE_FIELD] if isinstance(body, dict) else None
        if not isinstance(encoded, str):
            raise ValueError(f'expected {{"{IMAGE_FIELD}": "<base64 image>"}}')
        pixels = preprocess_bytes(base64.b64decode(encoded, validate=True), RESNET152_PYTORCH.preprocess)
    except (ValueError, KeyError, binascii.Error, ImageError) as exc:
        return AMLResponse({"error": str(exc)}, 400, json_str=True)
    with torch.inference_mode():
        logits = model(torch.from_numpy(pixels).unsqueeze(0)).numpy()
    ids, scores = top_k(logits, TOP_K, apply_softmax=RESNET152_PYTORCH.outputs_logits)
    return {
        "class_id": [int(i) for i in ids[0]],
        "label": [labels[int(i)] for i in ids[0]],
        "score": [float(s) for s in scores[0]],
    }
