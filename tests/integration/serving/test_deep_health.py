"""The deep health check against real servers: healthy, a dead stub, no server at all."""

from __future__ import annotations

import os
import signal
import time
import urllib.request
from pathlib import Path

import pytest

from export.build_repository import build
from serving import health
from serving.triton import Ports, TritonServer, free_ports


def test_every_ensemble_of_the_session_server_answers(triton_server: TritonServer) -> None:
    verdicts = health.check(triton_server.http_url, timeout=30)
    ensembles = {"faq_match", "efficientnet_lite0", "resnet152_pytorch"}
    assert ensembles <= {v.model for v in verdicts}
    assert all(v.healthy for v in verdicts), verdicts
    assert health.main(["--url", triton_server.http_url, "--timeout", "30"]) == 0


def test_no_server_is_unhealthy_at_once() -> None:
    (port,) = free_ports(1)
    started = time.monotonic()
    (verdict,) = health.check(f"localhost:{port}", timeout=2)
    assert not verdict.healthy and verdict.model == "(server)"
    assert time.monotonic() - started < 5


@pytest.fixture()
def faq_server(tmp_path: Path):
    repository = tmp_path / "repo"
    build("cpu", repository, only=["faq_match"], with_steps=True)
    with TritonServer(repository, Ports.free(), log_path=tmp_path / "triton.log") as server:
        yield server


def test_a_dead_stub_fails_the_deep_check_while_ready_still_says_yes(faq_server: TritonServer) -> None:
    assert [v.healthy for v in health.check(faq_server.http_url, timeout=30)] == [True]
    os.kill(faq_server.stubs()["faq_preprocess"][0], signal.SIGKILL)
    time.sleep(1)
    (verdict,) = health.check(faq_server.http_url, timeout=10)
    assert not verdict.healthy and "not healthy" in verdict.detail, verdict
    with urllib.request.urlopen(f"http://{faq_server.http_url}/v2/health/ready", timeout=5) as resp:
        assert resp.status == 200  # what a probe on Triton's own endpoint would believe
