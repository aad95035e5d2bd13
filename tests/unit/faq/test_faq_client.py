"""faq.client without a server: input encoding, and a clear message when nothing answers."""

from __future__ import annotations

import subprocess
import sys

from faq.client import _shorten, _text_input, ask
from serving.client import Endpoint
from serving.triton import free_ports


def test_questions_become_one_utf8_bytes_tensor_of_shape_n_by_1() -> None:
    for protocol in ("http", "grpc"):
        tensor = _text_input(Endpoint(protocol=protocol), ["caf\u00e9?", "two"])
        assert tensor.shape() == [2, 1]
        assert tensor.datatype() == "BYTES"


def test_no_questions_means_no_request() -> None:
    (port,) = free_ports(1)
    assert ask(Endpoint(url=f"localhost:{port}"), []) == []


def test_shorten() -> None:
    assert _shorten("short", 10) == "short"
    assert _shorten("a" * 20, 10) == "a" * 9 + "…"


def test_cli_says_where_it_tried_when_no_server_answers() -> None:
    (port,) = free_ports(1)
    for args, protocol in (([], "http"), (["--grpc"], "grpc")):
        result = subprocess.run(
            [sys.executable, "-m", "faq.client", "hello", "--url", f"localhost:{port}", *args],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 2, result.stdout + result.stderr
        assert f"cannot reach Triton at localhost:{port} ({protocol})" in result.stdout
        assert "make serve" in result.stdout
