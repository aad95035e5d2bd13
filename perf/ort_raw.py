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

import numpy as np

log = logging.getLogger(__name__)


def session(onnx_file: Path, intra_op_threads: int = 0, inter_op_threads: int = 0):  # -> ort.InferenceSession
    """A session configured as the served ONNX step (``ensembles.steps.onnx``) configures its own."""
    import onnxruntime as ort

    from ensembles.steps.onnx import session_options

    options = session_options(intra_op_threads, inter_op_threads)
    return ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])


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
    warmup_runs: int = 1,
) -> list[dict[str, float]]:
    """Items/s and per-batch latency (ms) at each batch size.

    ``sessions`` > 1 runs that many sessions at once, one thread each (ONNX Runtime releases
    the GIL), as Triton runs that many instances of the network: the raw figure for a
    multi-instance setting. ``inputs``: real preprocessed items ``(n, *dims)`` cycled into
    batches (random values in the network's input shape otherwise).
    """
    sess_list = [session(onnx_file, intra_op_threads, inter_op_threads) for _ in range(max(1, sessions))]
    meta = sess_list[0].get_inputs()[0]
    dims = [d if isinstance(d, int) else 1 for d in meta.shape[1:]]
    if inputs is None:
        inputs = np.random.default_rng(0).standard_normal((8, *dims)).astype(np.float32)
    points = []
    for batch in batch_sizes:
        idx = np.arange(batch) % len(inputs)
        feed = {meta.name: np.ascontiguousarray(inputs[idx])}
        for sess in sess_list:
            for _ in range(warmup_runs):
                sess.run(None, feed)
        start = time.perf_counter()

        def loop(sess: object, start: float = start, feed: dict = feed) -> list[float]:
            latencies: list[float] = []
            while len(latencies) < min_runs or time.perf_counter() - start < min_seconds:
                t0 = time.perf_counter()
                sess.run(None, feed)  # type: ignore[attr-defined]
                latencies.append(time.perf_counter() - t0)
            return latencies

        with ThreadPoolExecutor(len(sess_list)) as pool:
            per_session = list(pool.map(loop, sess_list))
        elapsed = time.perf_counter() - start
        latencies = [t for lat in per_session for t in lat]
        ms = np.asarray(latencies) * 1000.0
        point = {
            "batch": batch,
            "throughput": batch * len(latencies) / elapsed,
            "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99)),
            "sessions": len(sess_list),
            "runs": len(latencies),
        }
        log.info(
            "raw ORT %s batch %d, %d session(s): %.2f items/s",
            model,
            batch,
            len(sess_list),
            point["throughput"],
        )
        points.append(point)
    return points
