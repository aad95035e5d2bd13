"""One anomaly model per (device, sensor): StandardScaler + OneClassSVM, exported to ONNX.

Models are stored as ONNX, never pickled: unpickling a file read from storage executes whatever
code the file names, so anyone able to write to the `models` container could run code on every
scoring node. An ONNX file is data (a graph of standard operators) and is also checked against
the SHA-256 in the manifest before it is loaded.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np

from batch_scoring import features
from batch_scoring.schema import ANOMALY_TYPES

# ONNX opsets the exported graphs use (ONNX Runtime 1.31 implements both).
TARGET_OPSET = {"": 17, "ai.onnx.ml": 3}


@dataclass(frozen=True)
class ModelConfig:
    """Hyperparameters; `PRESETS` holds the original architecture's and the chosen defaults."""

    features: str = "context"
    kernel: str = "rbf"
    gamma: float | str = 0.01  # a number, or "scale"/"auto" as scikit-learn accepts
    nu: float = 0.001
    train_fraction: float = 0.5

    def as_dict(self) -> dict:
        return asdict(self)


PRESETS = {
    # The original: rbf, gamma=0.01, nu=0.0001 on the reading alone.
    "original": ModelConfig(features="value", kernel="rbf", gamma=0.01, nu=0.0001),
    # Chosen from `python -m batch_scoring tune` (docs/batch_scoring.md has the table).
    "default": ModelConfig(),
}


class ChecksumMismatch(ValueError):
    """The model bytes do not match the manifest: never load them."""


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fit(x_train: np.ndarray, config: ModelConfig):
    """Fit the scaler + SVM pipeline on a feature matrix."""
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import OneClassSVM

    pipe = Pipeline(
        [
            ("scaler", StandardScaler()),
            ("svm", OneClassSVM(kernel=config.kernel, gamma=config.gamma, nu=config.nu)),
        ]
    )
    return pipe.fit(x_train)


def _cache_op_versions() -> None:
    """Let skl2onnx build its operator-version table once per process, not once per model.

    skl2onnx 1.20 rebuilds the table from every ONNX schema for each conversion (~13 ms, a
    quarter of the time to train and export one small model). The table depends only on the
    installed `onnx` package, so caching it is safe; if the private hook moves, nothing changes.
    """
    from skl2onnx.common import _container

    cls = getattr(_container, "ModelComponentContainer", None)
    original = getattr(cls, "_build_op_version", None)
    if original is None or getattr(original, "_cached", False):
        return
    table: dict = {}

    def cached(self) -> None:
        if not table:
            original(self)
            table.update(self._op_versions)
        self._op_versions = dict(table)

    cached._cached = True  # type: ignore[attr-defined]
    cls._build_op_version = cached


def to_onnx(pipeline, n_features: int, metadata: dict[str, str] | None = None) -> bytes:
    """Serialize the pipeline; outputs `label` (+1/-1, int64) and `scores` (decision function)."""
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    _cache_op_versions()
    onx = convert_sklearn(
        pipeline, initial_types=[("X", FloatTensorType([None, n_features]))], target_opset=TARGET_OPSET
    )
    for key, value in (metadata or {}).items():
        prop = onx.metadata_props.add()
        prop.key, prop.value = key, str(value)
    return onx.SerializeToString()


class OnnxModel:
    """An ONNX Runtime session kept cheap: one thread, since workers already run in parallel."""

    def __init__(self, data: bytes, expected_sha256: str | None = None) -> None:
        import onnxruntime as ort

        if expected_sha256 is not None:
            actual = sha256(data)
            if actual != expected_sha256:
                raise ChecksumMismatch(f"model sha256 {actual[:12]} != manifest {expected_sha256[:12]}")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)
        self.input_name = self.session.get_inputs()[0].name

    def predict(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return (prediction 0/1 as in the original: +1 -> 0 normal, -1 -> 1 anomaly, raw score)."""
        label, scores = self.session.run(None, {self.input_name: np.ascontiguousarray(x, np.float32)})
        return (np.asarray(label).ravel() == -1).astype(np.int8), np.asarray(scores, np.float64).ravel()


def counts(pred: np.ndarray, truth: np.ndarray) -> dict[str, int]:
    """Confusion counts of binary predictions against labels (1 = anomaly)."""
    pred, truth = np.asarray(pred).astype(bool), np.asarray(truth).astype(bool)
    tp = int((pred & truth).sum())
    fp = int((pred & ~truth).sum())
    fn = int((~pred & truth).sum())
    tn = int((~pred & ~truth).sum())
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn}


def confusion(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Precision/recall/F1 of binary predictions against labels (1 = anomaly)."""
    return with_ratios(counts(pred, truth))


COUNTS = ("tp", "fp", "fn", "tn")


def series_counts(pred: np.ndarray, labels: np.ndarray, kinds: np.ndarray) -> dict:
    """One series' confusion counts and, per anomaly type, readings flagged and labelled."""
    row: dict = counts(pred, labels)
    for kind in ANOMALY_TYPES:
        mask = kinds == kind
        row[f"hit_{kind}"], row[f"all_{kind}"] = int(pred[mask].sum()), int(mask.sum())
    return row


def pooled(rows: Iterable[dict]) -> dict:
    """Micro-averaged precision/recall/F1 over many series: sum the counts, then the ratios."""
    rows = list(rows)
    return with_ratios({k: sum(r[k] for r in rows) for k in COUNTS})


def recall_by_type(rows: list[dict]) -> dict[str, float | None]:
    """Recall per anomaly type over ``series_counts`` rows (None where none was labelled)."""
    out: dict[str, float | None] = {}
    for kind in ANOMALY_TYPES:
        total = sum(r[f"all_{kind}"] for r in rows)
        out[kind] = round(sum(r[f"hit_{kind}"] for r in rows) / total, 3) if total else None
    return out


def with_ratios(c: dict) -> dict:
    """Add precision/recall/F1 to a dict of counts (micro-averaging sums counts first)."""
    tp, fp, fn = c["tp"], c["fp"], c["fn"]
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {**c, "precision": round(precision, 4), "recall": round(recall, 4), "f1": round(f1, 4)}


def features_for(values: np.ndarray, config: ModelConfig) -> np.ndarray:
    return features.compute(values, config.features)
