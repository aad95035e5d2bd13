"""Train one model per (device, sensor), export each to ONNX and write the model manifest.

Every training run writes a new, immutable version: its ONNX files under ``models/v=<id>/``
and its manifest as ``models/v=<id>/manifest.json``. Only then, and only if the version passes
the gate (no failed series, at least one model, not worse than the serving version on the same
held-out readings), ``models/manifest.json``, the pointer every scoring run reads once at its
start, is replaced by it in one write. A scoring run therefore finishes on the version it started
with, and a failed or refused training changes nothing (``batch_scoring.versions``).

Each series is split in time: the first `train_fraction` of readings is the training window,
the rest is the evaluation window on which precision/recall are measured against the injected
labels, using the exported ONNX model (what scoring will actually run). The manifest records, per
model: id, device, sensor, training window, metrics, SHA-256 of the ONNX bytes and of the
training data, and the hyperparameters.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime

import numpy as np

from batch_scoring import dataio, features
from batch_scoring.model import (
    ModelConfig,
    OnnxModel,
    confusion,
    features_for,
    fit,
    pooled,
    sha256,
    to_onnx,
)
from batch_scoring.schema import ANOMALY_TYPES, LABEL, LABEL_TYPE, TS, VALUE, Partition
from batch_scoring.storage import Store, StoreSpec

MANIFEST_VERSION = 1


def train_partition(
    store: Store, part: Partition, config: ModelConfig, version: str = "", serving: dict | None = None
) -> dict:
    """Fit, export, evaluate and upload one model under ``v=<version>/``; return its manifest
    entry, with the serving version's model scored on the same evaluation window for the gate."""
    name, payload = dataio.read_partition_bytes(store.data, part)
    df = dataio.parse_frame(name, payload, columns=None)
    n = len(df)
    n_train = int(n * config.train_fraction)
    if n_train < 20 or n - n_train < 1:
        raise ValueError(f"{part.key}: {n} readings are too few to train and evaluate")
    x = features_for(df[VALUE].to_numpy(), config)
    pipe = fit(x[:n_train], config)
    ts = df[TS]
    model_id = f"{part.device}.{part.sensor}.{sha256(payload)[:12]}"
    onnx_bytes = to_onnx(
        pipe,
        x.shape[1],
        {
            "model_id": model_id,
            "device": part.device,
            "sensor": part.sensor,
            "features": config.features,
        },
    )
    # Evaluate the exported model, not the sklearn one: the manifest describes what will run.
    pred, _ = OnnxModel(onnx_bytes).predict(x)
    metrics = None
    if LABEL in df.columns:
        truth = df[LABEL].to_numpy()[n_train:]
        metrics = confusion(pred[n_train:], truth)
        if LABEL_TYPE in df.columns:
            kinds = df[LABEL_TYPE].fillna("").to_numpy()[n_train:]
            metrics["by_type"] = {
                k: [int(pred[n_train:][kinds == k].sum()), int((kinds == k).sum())] for k in ANOMALY_TYPES
            }
        metrics["train_flagged"] = int(pred[:n_train].sum())
        old = (serving or {}).get("models", {}).get(part.key)
        if old is not None:  # the serving model on the same held-out readings, for the gate
            x_old = features.compute(df[VALUE].to_numpy(), old["config"]["features"])  # its own features
            old_pred, _ = OnnxModel(store.models.read_bytes(old["blob"]), old["sha256"]).predict(x_old)
            metrics["serving"] = confusion(old_pred[n_train:], truth)
    blob = f"v={version}/{part.model_blob}" if version else part.model_blob
    store.models.write_bytes(blob, onnx_bytes)
    return {
        "model_id": model_id,
        "device": part.device,
        "sensor": part.sensor,
        "blob": blob,
        "sha256": sha256(onnx_bytes),
        "bytes": len(onnx_bytes),
        "format": "onnx",
        "training_window": {"start": str(ts.iloc[0]), "end": str(ts.iloc[n_train - 1]), "rows": n_train},
        "evaluation_window": {"start": str(ts.iloc[n_train]), "end": str(ts.iloc[-1]), "rows": n - n_train},
        "metrics": metrics,
        "n_support_vectors": int(pipe[-1].support_vectors_.shape[0]),
        "data_blob": name,
        "data_sha256": sha256(payload),
        "config": config.as_dict(),
    }


_STORE: Store | None = None


def _init_worker(spec: StoreSpec) -> None:
    global _STORE
    _STORE = spec.open()


def _train_chunk(
    args: tuple[list[Partition], ModelConfig, str, dict | None],
) -> tuple[list[dict], dict[str, str]]:
    parts, config, version, current = args
    assert _STORE is not None
    entries, errors = [], {}
    for part in parts:
        try:
            entries.append(train_partition(_STORE, part, config, version, current))
        except Exception as exc:  # reported per partition; the others go on
            errors[part.key] = f"{type(exc).__name__}: {exc}"
    return entries, errors


def _chunks(items: list, size: int) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


def summarize(entries: list[dict]) -> dict:
    """Micro-averaged metrics over all models (sum the confusion counts, then the ratios)."""
    with_metrics = [e["metrics"] for e in entries if e.get("metrics")]
    if not with_metrics:
        return {"models": len(entries)}
    by_type = {}
    for k in ANOMALY_TYPES:
        hit = sum(m["by_type"][k][0] for m in with_metrics if "by_type" in m)
        total = sum(m["by_type"][k][1] for m in with_metrics if "by_type" in m)
        by_type[k] = {"recall": round(hit / total, 4) if total else None, "labelled": total}
    return {
        "models": len(entries),
        **pooled(with_metrics),
        "recall_by_type": by_type,
        "mean_support_vectors": round(float(np.mean([e["n_support_vectors"] for e in entries])), 1),
    }


def train_all(
    spec: StoreSpec,
    config: ModelConfig,
    workers: int = 1,
    partitions: list[Partition] | None = None,
    progress: bool = True,
    tolerance: float = 0.02,
) -> dict:
    """Train every partition found in `data` into a new version; serve it if it passes the gate
    (``batch_scoring.versions``); return its manifest, with the gate's verdict."""
    from tqdm import tqdm

    from batch_scoring import versions

    store = spec.open()
    version, current = versions.new_version(), versions.serving(store.models)
    parts = partitions if partitions is not None else dataio.list_partitions(store.data)
    if not parts:
        raise ValueError(f"no partitions in {store.data.describe()}: run `generate` first")
    started = time.perf_counter()
    tasks = [(chunk, config, version, current) for chunk in _chunks(parts, 20)]
    entries: list[dict] = []
    errors: dict[str, str] = {}
    bar = tqdm(total=len(parts), desc="train", unit="model", disable=not progress)
    if workers > 1 and len(tasks) > 1:
        with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(spec,)) as pool:
            for got, errs in pool.map(_train_chunk, tasks):
                entries += got
                errors.update(errs)
                bar.update(len(got) + len(errs))
    else:
        _init_worker(spec)
        for task in tasks:
            got, errs = _train_chunk(task)
            entries += got
            errors.update(errs)
            bar.update(len(got) + len(errs))
    bar.close()
    manifest = {
        "format": MANIFEST_VERSION,
        "version": version,
        "previous": (current or {}).get("version"),
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
        "config": config.as_dict(),
        "seconds": round(time.perf_counter() - started, 2),
        "summary": summarize(entries),
        "errors": errors,
        "models": {f"{e['device']}/{e['sensor']}": e for e in sorted(entries, key=lambda e: e["blob"])},
    }
    passed, why = versions.gate(manifest, current, tolerance)
    manifest["gate"] = {"passed": passed, "reason": why}
    name = versions.VERSION_MANIFEST.format(version=version)
    store.models.write_bytes(name, json.dumps(manifest, indent=1).encode())
    if passed:
        versions.publish(store.models, manifest)
    return manifest
