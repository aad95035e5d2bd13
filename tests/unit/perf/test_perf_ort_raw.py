"""The raw ONNX Runtime loop on a tiny real ONNX model (one and several sessions)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from perf import ort_raw


def tiny_model(path: Path) -> Path:
    x = helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 4])
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 4])
    graph = helper.make_graph([helper.make_node("Relu", ["input"], ["logits"])], "tiny", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


@pytest.mark.parametrize("sessions", [1, 2])
def test_measure_reports_items_per_second_per_batch(tmp_path: Path, sessions: int) -> None:
    path = tiny_model(tmp_path / "tiny.onnx")
    inputs = np.arange(12, dtype=np.float32).reshape(3, 4)
    started = time.perf_counter()
    points = ort_raw.measure(path, inputs, (1, 4), intra_op_threads=1, sessions=sessions, min_seconds=0.05)
    assert list(points) == [1, 4] and all(items > 0 for items in points.values())
    assert time.perf_counter() - started >= 0.1  # each batch size ran its minimum time
