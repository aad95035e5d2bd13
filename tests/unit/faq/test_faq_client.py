"""faq.client without a server: input encoding, and a clear message when nothing answers."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import faq.client
from faq.client import _shorten, ask
from serving.client import Endpoint, Unreachable
from serving.triton import free_ports


def test_questions_become_one_utf8_bytes_tensor_of_shape_n_by_1(monkeypatch: pytest.MonkeyPatch) -> None:
    sent = {}

    def fake_infer(endpoint, model, inputs, outputs, **_):
        sent.update(inputs)
        rows = len(inputs["TEXT"])
        return {
            "FAQ_ID": np.zeros((rows, 5), np.int64),
            "SCORE": np.zeros((rows, 5), np.float32),
            "FAQ_QUESTION": np.full((rows, 5), b"q", object),
            "FAQ_ANSWER": np.full((rows, 5), b"a", object),
            "MATCHED": np.array([[True], [False]])[:rows],
        }

    monkeypatch.setattr(faq.client, "infer", fake_infer)
    matches = ask(Endpoint(), ["caf\u00e9?", "two"], top_k=2)
    assert sent["TEXT"].shape == (2, 1) and sent["TEXT"][0, 0] == "caf\u00e9?".encode()
    assert [len(m) for m in matches] == [2, 2] and matches[0][0].question == "q"
    assert [m.matched for m in matches[0]] == [True, True] and not matches[1][0].matched


def test_an_unreachable_server_is_unreachable() -> None:
    (port,) = free_ports(1)
    for protocol in ("http", "grpc"):
        with pytest.raises(Unreachable):
            ask(Endpoint(url=f"localhost:{port}", protocol=protocol), ["hello"], timeout_s=5)


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
            [
                sys.executable,
                "-m",
                "faq.client",
                "hello",
                "--url",
                f"localhost:{port}",
                "--retry-s",
                "1",
                *args,
            ],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 2, result.stdout + result.stderr
        assert f"cannot reach Triton at localhost:{port} ({protocol})" in result.stdout
        assert "gave up after" in result.stdout  # it retried first, within the bound
        assert "make serve" in result.stdout
