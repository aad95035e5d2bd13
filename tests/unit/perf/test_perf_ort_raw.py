"""The raw ONNX Runtime loop on a tiny real ONNX model (one and several sessions)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
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


def test_measure_reports_items_per_second_per_batch(tmp_path: Path) -> None:
    path = tiny_model(tmp_path / "tiny.onnx")
    inputs = np.arange(12, dtype=np.float32).reshape(3, 4)
    points = ort_raw.measure(path, "tiny", (1, 4), inputs=inputs, intra_op_threads=1, min_seconds=0.05)
    assert [p["batch"] for p in points] == [1, 4]
    for p in points:
        assert p["runs"] >= 3 and p["throughput"] > 0 and 0 < p["p50_ms"] <= p["p99_ms"]
        assert p["sessions"] == 1


def test_several_sessions_run_at_once(tmp_path: Path) -> None:
    path = tiny_model(tmp_path / "tiny.onnx")
    (point,) = ort_raw.measure(
        path, "tiny", (2,), intra_op_threads=1, sessions=2, min_seconds=0.05, min_runs=5
    )
    assert point["runs"] >= 10  # both sessions ran their minimum
    assert point["sessions"] == 2
