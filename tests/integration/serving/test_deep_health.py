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


def test_the_deep_check_over_http_for_platforms_whose_probes_only_get(triton_server: TritonServer) -> None:
    """`python -m serving.health --serve PORT` (Azure ML's liveness and readiness routes): 200
    while every ensemble answers, 503 with the reason when the server is gone."""
    import threading
    import urllib.error

    for url, status in ((triton_server.http_url, 200), (f"127.0.0.1:{free_ports(1)[0]}", 503)):
        server = health.serve(0, url, timeout=10)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/ready", timeout=60) as resp:
                got, body = resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            got, body = exc.code, exc.read().decode()
        finally:
            server.shutdown()
        assert got == status, body
        assert ("ok faq_match" in body) if status == 200 else ("FAIL (server)" in body)
