"""A step that runs an ONNX file with ONNX Runtime, for servers without the ONNX Runtime backend.

The local Triton server (from the ``nvidia-pytriton`` wheel) has no ``onnxruntime`` backend, so
every ONNX model of the CPU rendering runs here. Tensor names come from the model's own config
(rendered from its spec), so one class serves every ONNX model; the dynamic batch runs as one
``InferenceSession.run``.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort

from ensembles.runtime import Arrays, ConfigError, Step, StepConfig


class OnnxRunner(Step):
    def __init__(self, config: StepConfig, log: object = None) -> None:
        super().__init__(config, log)
        path = config.file("ONNX_FILE", "model.onnx")
        options = session_options(
            config.integer("ORT_INTRA_OP_THREADS", 0), config.integer("ORT_INTER_OP_THREADS", 0)
        )
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        missing = set(config.inputs) - {i.name for i in self.session.get_inputs()}
        if missing:
            raise ConfigError(f"{path.name} has no inputs {sorted(missing)}")

    def compute(self, batch: Arrays) -> Arrays:
        feed = {name: as_ort_input(batch[name]) for name in self.config.inputs}
        outputs = self.session.run(list(self.config.outputs), feed)
        return dict(zip(self.config.outputs, outputs, strict=True))


def session_options(intra_op_threads: int = 0, inter_op_threads: int = 0) -> ort.SessionOptions:
    """The options every served ONNX session uses (0 threads: ONNX Runtime decides).

    Idle threads sleep instead of spinning: a spinning pool burns the CPU quota that the other
    stubs need, and a stub starved for a second is one Triton 2.51 aborts the server for."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = inter_op_threads
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    return options


def as_ort_input(array: np.ndarray) -> np.ndarray:
    """TYPE_STRING tensors arrive as ``bytes``; ONNX Runtime would ``str()`` them into ``"b'...'"``,
    so string models (the FAQ TF-IDF) get decoded ``str``, once per dynamic batch."""
    if array.dtype != np.object_ or not array.size:
        return array
    decoded = [v.decode("utf-8") if isinstance(v, bytes) else v for v in array.ravel().tolist()]
    return np.array(decoded, dtype=object).reshape(array.shape)
