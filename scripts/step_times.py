"""How long one ``execute()`` of every Python-backend step takes at its largest batch.

    .venv/bin/python scripts/step_times.py [--repository model_repository] [--runs 5]

Triton 2.51 aborts the whole server when a stub does not answer its health check within 1 s,
and a stub inside ``execute()`` answers only when it returns: a step whose dynamic batch takes
close to a second is a crash waiting for a slow moment. This loads each step of the built
repository exactly as Triton does (``ensembles.testing``: the rendered config, the version
folder, the step's own class), feeds it its largest batch of real data (questions, photos, the
network's own inputs), and prints the slowest of a few runs per step, one thread per step as in
the server (``OMP_NUM_THREADS=1``). Run it on an idle machine; the figures go in docs/images.md
and docs/faq.md when a step or a batch size changes.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from ensembles.testing import Request, load_model
from serving.catalog import models_by_name
from serving.modelspec import ModelSpec
from serving.paths import MODEL_REPOSITORY_DIR


def first_inputs(spec: ModelSpec, size: int) -> np.ndarray:
    """``size`` real items for an ensemble's input: held-out FAQ questions, or the sample photos."""
    from faq.data import load_dataset
    from faq.specs import TEXT
    from imaging.samples import all_samples

    if spec.inputs[0].name == TEXT:
        items = [t.encode() for t in load_dataset().originals["question"].head(size)]
    else:
        photos = [p.read_bytes() for p in all_samples().values()]
        items = [photos[i % len(photos)] for i in range(size)]
    return np.array(items, dtype=object).reshape(size, 1)


def time_steps(ensemble: ModelSpec, repository: Path, runs: int) -> list[tuple[str, int, list[float]]]:
    """Each step of ``ensemble`` in order, on what the step before it produced: one request per
    row, as many rows as the step's dynamic batch can hold, timed per ``execute()``."""
    by_name = models_by_name()
    size = max(by_name[step.model].max_batch_size for step in ensemble.steps)
    tensors = {ensemble.inputs[0].name: first_inputs(ensemble, size)}
    results = []
    for step in ensemble.steps:
        spec = by_name[step.model]
        model = load_model(spec, repository / spec.name / "1")
        rows = max(1, spec.max_batch_size)
        requests = [
            Request(**{inner: tensors[outer][i : i + 1] for inner, outer in step.input_map.items()})
            for i in range(rows)
        ]
        times = []
        for _ in range(runs + 1):  # the first run warms caches and is left out
            started = time.perf_counter()
            responses = model.execute(requests)  # type: ignore[attr-defined]
            times.append(1000 * (time.perf_counter() - started))
        errors = [r.error.message for r in responses if r.error is not None]
        assert not errors, f"{spec.name}: {errors[:1]}"
        for inner, outer in step.output_map.items():
            produced = np.concatenate([r.outputs[inner] for r in responses])
            tensors[outer] = np.resize(produced, (size, *produced.shape[1:]))
        results.append((spec.name, rows, times[1:]))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repository", type=Path, default=MODEL_REPOSITORY_DIR)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print("| step | batch | slowest execute() ms | median ms |\n|---|---:|---:|---:|")
    for spec in models_by_name().values():
        if spec.kind != "ensemble" or not (args.repository / spec.name).is_dir():
            continue
        for name, rows, times in time_steps(spec, args.repository.resolve(), args.runs):
            print(f"| {name} | {rows} | {max(times):.1f} | {float(np.median(times)):.1f} |", flush=True)


if __name__ == "__main__":
    main()
