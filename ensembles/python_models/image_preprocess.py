"""Python-backend model: encoded image bytes -> one network's input tensor.

Input ``IMAGE`` (TYPE_STRING, one encoded image per batch element); output the network's
input (FP32, CHW or HWC). The recipe is ``imaging.preprocess.CONFIGS[PREPROCESS]``, the same
code the client and the parity tests use. Errors are per request: in a dynamic batch, a
request with a bad image gets its own error response and the other requests are answered.
Images inside one request are decoded on a small thread pool (PIL releases the GIL while
decoding and resizing).
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import triton_python_backend_utils as pb_utils

from imaging.preprocess import CONFIGS, ImageError, preprocess_bytes


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        name = params.get("PREPROCESS", "")
        if name not in CONFIGS:
            raise pb_utils.TritonModelException(
                f"parameter PREPROCESS={name!r} is not one of {sorted(CONFIGS)}"
            )
        self.recipe = CONFIGS[name]
        self.input_name = config["input"][0]["name"]
        self.output_name = config["output"][0]["name"]
        declared = tuple(int(d) for d in config["output"][0]["dims"])
        if declared != self.recipe.shape:
            raise pb_utils.TritonModelException(
                f"output dims {declared} do not match recipe {name} shape {self.recipe.shape}"
            )
        self.pool = ThreadPoolExecutor(max_workers=int(params.get("DECODE_THREADS", "2")))
        self.model_name = args["model_name"]

    def _one(self, item: object) -> np.ndarray:
        if isinstance(item, np.ndarray):  # dims [1] arrive as (1,) object arrays per element
            item = item.reshape(-1)[0]
        if isinstance(item, str):
            raise ImageError("IMAGE must be binary image bytes, not text")
        return preprocess_bytes(item, self.recipe)

    def execute(self, requests: list) -> list:
        # submit every image of every request in the dynamic batch first, then collect
        jobs = []
        for request in requests:
            images = pb_utils.get_input_tensor_by_name(request, self.input_name).as_numpy()
            items = list(images.reshape(images.shape[0], -1)[:, 0]) if images.ndim > 1 else list(images)
            jobs.append([self.pool.submit(self._one, item) for item in items])
        responses = []
        for futures in jobs:
            arrays, errors = [], []
            for index, future in enumerate(futures):
                try:
                    arrays.append(future.result())
                except ImageError as exc:
                    errors.append(f"image {index}: {exc}")
                except Exception as exc:  # a decoder bug must not take the model down
                    pb_utils.Logger.log_error(f"{self.model_name}: unexpected {type(exc).__name__}: {exc}")
                    errors.append(f"image {index}: could not be decoded ({type(exc).__name__})")
            if errors:
                message = "invalid image input: " + "; ".join(errors)
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(message)))
                continue
            batch = np.stack(arrays).astype(np.float32, copy=False)
            output = pb_utils.Tensor(self.output_name, batch)
            responses.append(pb_utils.InferenceResponse(output_tensors=[output]))
        return responses

    def finalize(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
