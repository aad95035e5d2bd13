"""The local Triton launcher (serving.triton): clear errors, readiness, clean stop."""

from __future__ import annotations

import os
import socket
import sys
import time
import urllib.request
from pathlib import Path

import pytest

import serving.triton as triton
from faq.specs import PREPROCESS
from serving.render import write_model
from serving.triton import Ports, TritonError, TritonServer, locate_triton


def test_session_server_is_ready_on_all_three_ports(triton_server: TritonServer) -> None:
    assert triton_server.is_ready()
    with urllib.request.urlopen(triton_server.metrics_url, timeout=10) as resp:
        assert b"nv_inference_count" in resp.read()
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(triton_server.grpc_url)
    try:
        assert client.is_server_ready()
    finally:
        client.close()


def test_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        http, metrics = triton.free_ports(2)
        server = TritonServer(tmp_path, Ports(http, port, metrics), log_path=tmp_path / "log")
        with pytest.raises(TritonError, match=rf"gRPC port {port} is in use"):
            server.start()
        assert server.process is None


def test_missing_binary_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.machinery
    import importlib.util

    (tmp_path / "pytriton").mkdir()
    spec = importlib.machinery.ModuleSpec("pytriton", None, is_package=True)
    spec.submodule_search_locations = [str(tmp_path / "pytriton")]
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: spec)
    with pytest.raises(TritonError, match="Triton binary not found"):
        locate_triton()
    server = TritonServer(tmp_path, Ports.free(), log_path=tmp_path / "log")
    with pytest.raises(TritonError, match="Triton binary not found"):
        server.start()


def test_missing_wheel_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pytriton", None)
    with pytest.raises(TritonError, match="nvidia-pytriton is not installed"):
        locate_triton()


def test_missing_repository_is_a_clear_error(tmp_path: Path) -> None:
    server = TritonServer(tmp_path / "nope", Ports.free(), log_path=tmp_path / "log")
    with pytest.raises(TritonError, match="does not exist"):
        server.start()


def test_model_that_fails_to_load_reports_the_log(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "broken" / "1").mkdir(parents=True)
    (repo / "broken" / "config.pbtxt").write_text('name: "broken"\nbackend: "no_such_backend"\n')
    server = TritonServer(repo, Ports.free(), log_path=tmp_path / "triton.log")
    with pytest.raises(TritonError, match="exited with code") as info:
        server.start(timeout=120)
    assert "broken" in str(info.value)  # the log tail names the model
    assert server.process is None


def _group_members(pgid: int) -> dict[int, str]:
    members = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] != "Z":
            members[int(entry.name)] = cmdline
    return members


def test_stop_leaves_no_stub_processes(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write_model(PREPROCESS, "cpu", repo)
    server = TritonServer(repo, Ports.free(), log_path=tmp_path / "triton.log").start(timeout=180)
    assert server.process is not None
    pid = server.process.pid
    try:
        members = _group_members(pid)
        stubs = [p for p, cmd in members.items() if "triton_python_backend_stub" in cmd]
        assert pid in members and stubs, members
    finally:
        server.stop()
    assert server.process is None
    deadline = time.monotonic() + 10
    while _group_members(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _group_members(pid) == {}
    for stub in stubs:
        with pytest.raises(ProcessLookupError):
            os.kill(stub, 0)
    assert not server.is_ready()


def test_a_crashed_server_says_why_and_a_new_one_serves_with_no_stub_left(tmp_path: Path) -> None:
    """Triton killed by a signal: the log says so, its stubs die with it, a new server serves."""
    import signal

    repo = tmp_path / "repo"
    write_model(PREPROCESS, "cpu", repo)
    log_path = tmp_path / "triton.log"
    server = TritonServer(repo, Ports.free(), log_path=log_path).start(timeout=180)
    try:
        assert server.exit_code() is None
        old_pid, old_url = server.process.pid, server.http_url
        os.kill(old_pid, signal.SIGSEGV)
        deadline = time.monotonic() + 30
        while server.exit_code() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        code = server.exit_code()
        assert code is not None and code != 0
        assert "Signal (11) received." in log_path.read_text()
        server.stop()
        server.ports = Ports.free()  # the old ones may still sit in TIME_WAIT
        server.start(timeout=180)
        assert server.exit_code() is None and server.is_ready()
        assert server.http_url != old_url and server.process.pid != old_pid
        assert _group_members(old_pid) == {}  # the dead server's stubs went with it
    finally:
        server.stop()


def test_an_empty_repository_is_an_error_not_a_ready_server(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    server = TritonServer(tmp_path / "empty", Ports.free(), log_path=tmp_path / "triton.log")
    with pytest.raises(TritonError, match=r"no model of .* is ready .*the repository is empty"):
        server.start(timeout=120)
    assert server.process is None


def test_serve_again_on_the_same_ports_right_after_a_stop(tmp_path: Path) -> None:
    """Connections the stopped server closed sit in TIME_WAIT; they are not a server."""
    repo = tmp_path / "repo"
    write_model(PREPROCESS, "cpu", repo)
    ports = Ports.free()
    server = TritonServer(repo, ports, log_path=tmp_path / "triton.log").start(timeout=180)
    for _ in range(5):  # open and close a few connections, server side first at shutdown
        urllib.request.urlopen(f"http://{server.http_url}/v2/health/ready", timeout=10).read()
    server.stop()
    again = TritonServer(repo, ports, log_path=tmp_path / "triton2.log").start(timeout=180)
    try:
        assert again.is_ready() and again.ports == ports
        assert [m["state"] for m in again.models()] == ["READY"]
    finally:
        again.stop()


def test_stop_after_the_server_died_leaves_no_stub(tmp_path: Path) -> None:
    """``make stop`` once tritonserver was SIGKILLed: its stubs are still in its process group."""
    import signal

    repo = tmp_path / "repo"
    write_model(PREPROCESS, "cpu", repo)
    server = TritonServer(repo, Ports.free(), log_path=tmp_path / "triton.log").start(timeout=180)
    pid = server.process.pid
    os.kill(pid, signal.SIGKILL)
    server.process.wait(timeout=30)
    triton.stop_process_group(pid)  # what `python -m serving stop` does for a dead server
    deadline = time.monotonic() + 10
    while _group_members(pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _group_members(pid) == {}
    server.process = None
    server.stop()
