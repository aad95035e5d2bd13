"""`python -m imaging.client` against the running server, as a user runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from imaging.samples import sample_path
from serving.paths import REPO_ROOT
from serving.triton import TritonServer


def run_client(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "imaging.client", *args],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={"COLUMNS": "160", "PATH": "/usr/bin:/bin"},
    )


def test_cli_prints_the_top5_over_http(triton_server: TritonServer) -> None:
    result = run_client(
        "--url", triton_server.http_url, "--model", "efficientnet_lite0",
        str(sample_path("coffee")), str(sample_path("chelsea")),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "coffee.png" in result.stdout and "chelsea.png" in result.stdout
    assert "espresso" in result.stdout
    assert "cat" in result.stdout


def test_cli_over_grpc_and_a_bad_file(triton_server: TritonServer, tmp_path: Path) -> None:
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    result = run_client(
        "--grpc", "--url", triton_server.grpc_url, "--model", "resnet152_tensorflow",
        str(sample_path("rocket")), str(empty),
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert "rocket.jpg" in result.stdout  # the good file is still classified
    assert "empty.jpg" in result.stdout and "empty input" in result.stdout
    assert "random weights" in result.stdout  # the client warns about random-weight ResNets
