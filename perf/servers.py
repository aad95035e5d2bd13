"""The Triton side of a benchmark: which models to load, a repository for them, a server.

A benchmark builds its own repository under ``perf/out/`` (never ``model_repository/``,
which a developer's ``make serve`` may be using) holding only the models it measures and
their ensemble steps, and starts Triton on free loopback ports. Variants of the model specs
(tuning) are rendered the same way, from the specs with some fields replaced, without
editing the spec files.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from serving.modelspec import ModelSpec
from serving.paths import ARTIFACTS_DIR
from serving.triton import Ports, TritonServer

LOOPBACK_ARGS = ("--http-address=127.0.0.1", "--grpc-address=127.0.0.1", "--metrics-address=127.0.0.1")


def catalog() -> dict[str, ModelSpec]:
    from serving.catalog import models_by_name

    return models_by_name()


def closure(names: Iterable[str], specs: Mapping[str, ModelSpec]) -> list[str]:
    """``names`` and, for ensembles, every step model (recursively), in a stable order."""
    seen: dict[str, None] = {}

    def visit(name: str) -> None:
        if name in seen:
            return
        if name not in specs:
            raise KeyError(f"unknown model {name!r}; served models: {', '.join(sorted(specs))}")
        seen[name] = None
        for step in specs[name].steps:
            visit(step.model)

    for name in names:
        visit(name)
    return list(seen)


def onnx_step(ensemble: str, specs: Mapping[str, ModelSpec]) -> ModelSpec | None:
    """The ONNX network inside an ensemble (the raw model for the "ensemble vs raw" ratio)."""
    spec = specs[ensemble]
    if spec.kind == "onnx":
        return spec
    for step in spec.steps:
        found = onnx_step(step.model, specs)
        if found is not None:
            return found
    return None


def input_tensor(name: str, specs: Mapping[str, ModelSpec]) -> str:
    return specs[name].inputs[0].name


def settings(names: Iterable[str], specs: Mapping[str, ModelSpec]) -> dict[str, str]:
    """What a reader needs to reproduce a figure: batching, instances and threads per model."""
    found = {}
    for name in names:
        spec = specs[name]
        if spec.kind == "ensemble":
            continue
        parts = [f"max_batch_size {spec.max_batch_size}"]
        if spec.dynamic_batching is not None:
            pref = list(spec.dynamic_batching.preferred_batch_sizes) or "none"
            parts.append(
                f"dynamic batching (delay {spec.dynamic_batching.max_queue_delay_us} µs, preferred {pref})"
            )
        else:
            parts.append("no dynamic batching")
        parts.append(f"{spec.instances.cpu} CPU instance(s)")
        if spec.kind == "onnx":
            parts.append(f"ORT intra/inter threads {spec.ort.intra_op_threads}/{spec.ort.inter_op_threads}")
        found[name] = ", ".join(parts)
    return found


def with_changes(spec: ModelSpec, changes: Mapping[str, Any]) -> ModelSpec:
    return dataclasses.replace(spec, **changes) if changes else spec


def build_repository(
    names: Iterable[str],
    repository: Path,
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
    artifacts_dir: Path = ARTIFACTS_DIR,
) -> list[str]:
    """Render ``names`` (and their steps) into a fresh ``repository``; returns the models written.

    Missing ONNX artifacts are exported first, as ``make build`` does.
    """
    from export.build_repository import ensure_artifacts
    from serving.render import validate, write_model

    specs = catalog()
    overrides = overrides or {}
    unknown = set(overrides) - set(specs)
    if unknown:
        raise KeyError(f"overrides for unknown models {sorted(unknown)}")
    wanted = closure(names, specs)
    chosen = [with_changes(specs[n], overrides.get(n, {})) for n in wanted]
    validate(chosen)
    ensure_artifacts(chosen, artifacts_dir)
    if repository.exists():
        shutil.rmtree(repository)
    repository.mkdir(parents=True)
    for spec in chosen:
        write_model(spec, "cpu", repository, artifacts_dir)
    return wanted


def triton(repository: Path, log_path: Path) -> TritonServer:
    """A server on free ports, listening on loopback only."""
    return TritonServer(repository, Ports.free(), log_path=log_path, extra_args=LOOPBACK_ARGS)
