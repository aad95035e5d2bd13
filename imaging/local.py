"""The same classification without Triton: shared preprocessing, ONNX Runtime, shared top-k.

A baseline for the perf harness and the reference the integration tests compare the
served ensembles against (same ONNX file, same preprocessing code, no server).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from imaging.artifacts import onnx_path
from imaging.labels import imagenet_labels
from imaging.networks import TOP_K, Network, network
from imaging.postprocess import Prediction, predictions, top_k
from imaging.preprocess import preprocess_bytes
from serving.paths import ARTIFACTS_DIR


class LocalClassifier:
    """``LocalClassifier("efficientnet_lite0").classify([bytes, ...])`` -> top-5 per image."""

    def __init__(self, name: str, artifacts_dir: Path = ARTIFACTS_DIR, threads: int = 0):
        import onnxruntime as ort

        self.network: Network = network(name)
        path = onnx_path(artifacts_dir, name)
        if not path.is_file():
            module = self.network.exporter.split(":")[0]
            raise FileNotFoundError(f"{path} is missing: run `make build` (or python -m {module})")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def preprocess(self, images: Sequence[bytes]) -> np.ndarray:
        return np.stack([preprocess_bytes(data, self.network.preprocess) for data in images])

    def scores(self, batch: np.ndarray) -> np.ndarray:
        """The network's raw output (logits or probabilities) for preprocessed inputs."""
        (out,) = self.session.run([self.network.output_name], {self.network.input_name: batch})
        return out

    def top_k(self, batch: np.ndarray, k: int = TOP_K) -> tuple[np.ndarray, np.ndarray]:
        return top_k(self.scores(batch), k, self.network.outputs_logits)

    def classify(self, images: Sequence[bytes], k: int = TOP_K) -> list[list[Prediction]]:
        ids, probs = self.top_k(self.preprocess(images), k)
        return predictions(ids, probs, imagenet_labels())
