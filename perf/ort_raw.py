"""Raw ONNX Runtime throughput, in-process, for the "ensemble vs raw network" ratio.

The ensemble's ceiling is the network itself: the same ONNX file, the same session options
the server uses (threads from the model spec, full graph optimisation), run in a tight loop
at several batch sizes with no server, no HTTP and no preprocessing. ``items/s`` at the best
batch size is the denominator of the 85% target.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)


def measure(
    onnx_file: Path,
    model: str,
    batch_sizes: Sequence[int] = (1, 4, 8),
    *,
    inputs: np.ndarray | None = None,
    intra_op_threads: int = 0,
    inter_op_threads: int = 0,
    sessions: int = 1,
    min_seconds: float = 10.0,
    min_runs: int = 3,
) -> list[dict[str, float]]:
    """Items/s and per-batch latency (ms) at each batch size, after one warm-up run.

    ``sessions`` > 1 runs that many sessions at once, one thread each (ONNX Runtime releases
    the GIL), as Triton runs that many instances of the network: the raw figure for a
    multi-instance setting. Sessions are configured as the served ONNX step configures its own.
    ``inputs``: real preprocessed items ``(n, *dims)`` cycled into batches (random values in
    the network's input shape otherwise).
    """
    import onnxruntime as ort

    from ensembles.steps.onnx import session_options

    options = session_options(intra_op_threads, inter_op_threads)
    cpu = ["CPUExecutionProvider"]
    runners = [ort.InferenceSession(str(onnx_file), options, providers=cpu) for _ in range(max(1, sessions))]
    meta = runners[0].get_inputs()[0]
    if inputs is None:
        dims = [d if isinstance(d, int) else 1 for d in meta.shape[1:]]
        inputs = np.random.default_rng(0).standard_normal((8, *dims)).astype(np.float32)
    points = []
    for batch in batch_sizes:
        feed = {meta.name: np.ascontiguousarray(inputs[np.arange(batch) % len(inputs)])}
        for runner in runners:
            runner.run(None, feed)
        start = time.perf_counter()

        def loop(runner: Any, start: float = start, feed: dict = feed) -> list[float]:
            latencies: list[float] = []
            while len(latencies) < min_runs or time.perf_counter() - start < min_seconds:
                t0 = time.perf_counter()
                runner.run(None, feed)
                latencies.append(time.perf_counter() - t0)
            return latencies

        with ThreadPoolExecutor(len(runners)) as pool:
            ms = np.concatenate(list(pool.map(loop, runners))) * 1000.0
        throughput = batch * len(ms) / (time.perf_counter() - start)
        log.info("raw ORT %s batch %d, %d session(s): %.2f items/s", model, batch, len(runners), throughput)
        percentiles = {"p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99))}
        points.append({"batch": batch, "throughput": throughput, **percentiles, "sessions": len(runners)})
        points[-1]["runs"] = len(ms)
    return points
