"""``python -m faq.client`` against the session's server."""

from __future__ import annotations

import subprocess
import sys

from serving.triton import TritonServer


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "faq.client", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={"COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )


def test_cli_prints_a_table_over_http_and_grpc(triton_server: TritonServer) -> None:
    question = "How do I remove a specific item from an array in JavaScript?"
    for args in (["--url", triton_server.http_url], ["--grpc", "--url", triton_server.grpc_url]):
        result = _run(question, "why does 0.1 + 0.2 not equal 0.3", *args, "--top-k", "3")
        assert result.returncode == 0, result.stderr + result.stdout
        out = result.stdout
        assert out.count("Q: ") == 2
        assert "4001000" in out  # the "remove an item from an array" original
        assert "score" in out and "original question" in out and "answer" in out
        table = out.split("Q: ")[1]
        assert all(f"│ {rank} │" in table for rank in (1, 2, 3)) and "│ 4 │" not in table


def test_cli_reports_bad_input_from_the_server(triton_server: TritonServer) -> None:
    result = _run("   ", "--url", triton_server.http_url)
    assert result.returncode == 1
    assert "empty after cleaning" in result.stdout
