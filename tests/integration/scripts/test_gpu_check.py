"""The GPU script end to end on the CPU (``--cpu``): the same rendering, server and measurements
with a ResNet-14 stand-in and EfficientNet-Lite0 in FP32, as CI can run it; the GPU run itself
needs a GPU machine."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from serving.paths import REPO_ROOT


def test_the_gpu_script_builds_serves_checks_and_measures_on_the_cpu(tmp_path: Path) -> None:
    out = tmp_path / "out"
    command = ["bash", "scripts/gpu_check.sh", "--cpu", "--out", str(out), "--concurrency", "1,2"]
    done = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600)
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
    config = (out / "repository" / "resnet152_pytorch_network" / "config.pbtxt").read_text()
    assert "TorchNetwork" in (out / "repository" / "resnet152_pytorch_network" / "1" / "model.py").read_text()
    assert 'string_value: "fp16"' in config  # the GPU's config, moved to the CPU by the environment only
    assert not (out / "repository" / "resnet152_pytorch_network" / "1" / "model.onnx").exists()

    results = tmp_path / "RESULTS.md"
    results.write_text("# Performance results\n\n## Image classification on GPU\n\nold\n\n## Other\n\nkept\n")
    record = ["scripts/gpu_check.py", "--record", str(out / "gpu_check.json"), "--results", str(results)]
    subprocess.run([".venv/bin/python", *record], cwd=REPO_ROOT, check=True, timeout=120)
    text = results.read_text()
    assert "old" not in text and "kept" in text and "of the ceiling" in text
