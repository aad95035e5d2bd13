"""Raw ONNX Runtime throughput, in-process: the denominator of the "ensemble vs raw network" ratio.

The ensemble's ceiling is the network itself: the same ONNX file and the session options the
served step uses (threads from the model spec), in a tight loop with no server, no HTTP and no
preprocessing, as many sessions at once as Triton runs instances (ONNX Runtime releases the GIL).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)


def measure(
    onnx_file: Path,
    inputs: np.ndarray,
    batch_sizes: Sequence[int] = (4, 8),
    *,
    intra_op_threads: int = 0,
    inter_op_threads: int = 0,
    sessions: int = 1,
    min_seconds: float = 10.0,
) -> dict[int, float]:
    """Items/s at each batch size (real preprocessed ``inputs`` cycled into batches), after one
    warm-up run; each session runs at least three batches."""
    import onnxruntime as ort

    from ensembles.steps.onnx import session_options

    options = session_options(intra_op_threads, inter_op_threads)
    cpu = ["CPUExecutionProvider"]
    runners = [ort.InferenceSession(str(onnx_file), options, providers=cpu) for _ in range(max(1, sessions))]
    name, throughput = runners[0].get_inputs()[0].name, {}
    for batch in batch_sizes:
        feed = {name: np.ascontiguousarray(inputs[np.arange(batch) % len(inputs)])}
        for runner in runners:
            runner.run(None, feed)
        start = time.perf_counter()

        def loop(runner: ort.InferenceSession, start: float = start, feed: dict = feed) -> int:
            runs = 0
            while runs < 3 or time.perf_counter() - start < min_seconds:
                runner.run(None, feed)
                runs += 1
            return runs

        with ThreadPoolExecutor(len(runners)) as pool:
            runs = sum(pool.map(loop, runners))
        throughput[batch] = batch * runs / (time.perf_counter() - start)
        log.info(
            "raw ONNX Runtime, batch %d, %d session(s): %.2f items/s", batch, len(runners), throughput[batch]
        )
    return throughput
