"""Fault injection under the supervisor: a killed or frozen server, a killed stub, a stub stalled
past Triton's 1 s deadline, a killed or frozen front door. Each time the service answers
correctly again within a stated time, the supervisor says why it restarted, and no request is
ever answered wrongly."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from export.build_repository import build
from faq.client import ask
from serving.client import ClientError, Endpoint
from serving.faults import stall
from serving.front_door import FrontDoor
from serving.health import healthy_after
from serving.supervise import Supervisor
from serving.triton import Ports, TritonServer, free_ports

QUESTION = "how do I remove a specific item from an array"
START_UP_S = 60.0  # the FAQ ensemble starts in about 10 s here; a loaded 2-core machine is slower


@pytest.fixture()
def supervised(tmp_path: Path) -> Iterator[Supervisor]:
    repository = tmp_path / "repo"
    build("cpu", repository, only=["faq_match"], with_steps=True)
    server = TritonServer(repository, Ports.free(), log_path=tmp_path / "triton.log").start(timeout=180)
    supervisor = Supervisor(server, check_every_s=1.0, check_timeout_s=5.0)
    thread = threading.Thread(target=supervisor.run, daemon=True)
    thread.start()
    yield supervisor
    supervisor.stop()
    thread.join(timeout=120)
    assert not thread.is_alive()
    assert server.process is None


def _wait_healthy(server: TritonServer, within_s: float) -> float:
    took = healthy_after(lambda: (server.http_url, server.admin_key), within_s)
    assert took is not None, f"not healthy again within {within_s:.0f} s"
    return took


class Load:
    """The same question sent in a loop; every answer is compared with the right one."""

    def __init__(self, server: TritonServer) -> None:
        self.endpoint = Endpoint(server.http_url)
        self.expected = ask(self.endpoint, [QUESTION])[0][0]
        self.answers, self.errors = 0, 0
        self.wrong: list[tuple[int, float]] = []  # (answer number, top FAQ id, its score)
        self.running = True
        self.thread = threading.Thread(target=self.loop, daemon=True)

    def loop(self) -> None:
        while self.running:
            try:
                top = ask(self.endpoint, [QUESTION], timeout_s=10)[0][0]
                self.answers += 1
                if (top.faq_id, round(top.score, 4)) != (self.expected.faq_id, round(self.expected.score, 4)):
                    self.wrong.append((self.answers, top.faq_id, top.score))
            except ClientError:
                self.errors += 1
                time.sleep(0.1)

    def __enter__(self) -> Load:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.running = False
        self.thread.join(timeout=30)


def test_a_killed_server_serves_again_within_start_up_plus_ten_seconds(supervised: Supervisor) -> None:
    server = supervised.server
    os.kill(server.process.pid, signal.SIGKILL)
    took = _wait_healthy(server, START_UP_S + 10)
    assert supervised.restarts == ["exited (killed by SIGKILL)"], supervised.restarts
    assert took < START_UP_S + 10


def test_a_killed_stub_is_noticed_and_the_service_answers_within_thirty_seconds(
    supervised: Supervisor,
) -> None:
    server = supervised.server
    with Load(server) as load:
        time.sleep(1)
        os.kill(server.stubs()["faq_preprocess"][0], signal.SIGKILL)
        time.sleep(1)
        took = _wait_healthy(server, 30 + START_UP_S / 2)
        time.sleep(2)
    assert len(supervised.restarts) == 1 and "deep check" in supervised.restarts[0], supervised.restarts
    assert "not healthy" in supervised.restarts[0]
    assert load.wrong == [] and load.answers > 0, vars(load)
    assert took < 30 + START_UP_S / 2


def test_a_frozen_server_is_restarted(supervised: Supervisor) -> None:
    """tritonserver itself stops (SIGSTOP, never continued: a hung server). Its port still accepts
    connections and its process runs, so only the deep check shows it; after two failed checks the
    supervisor kills what is left and starts a fresh server, which answers correctly."""
    server = supervised.server
    expected = ask(Endpoint(server.http_url), [QUESTION])[0][0]
    frozen = server.process.pid
    os.kill(frozen, signal.SIGSTOP)
    time.sleep(1)
    budget = 2 * (supervised.check_every_s + supervised.check_timeout_s) + 3 + START_UP_S + 10
    took = _wait_healthy(server, budget)
    assert server.process is not None and server.process.pid != frozen
    assert [r.split(" (")[0] for r in supervised.restarts] == ["failed the deep check 2 times in a row"]
    assert ask(Endpoint(server.http_url), [QUESTION])[0][0] == expected
    assert took < budget


@pytest.mark.parametrize("stall_s", [1.5, 3.0])
def test_a_stub_stalled_past_the_deadline_under_load(supervised: Supervisor, stall_s: float) -> None:
    """Triton 2.51 aborts when a stub misses its 1 s health deadline; the service comes back.

    Between the stall and the abort, Triton 2.51 itself has been seen to hand one request the
    answer of another (about one run in two, one answer in a thousand: the deep check's question
    answered to the load's). Nothing in front of the server can stop that; what is asserted is
    that it never happens once the supervisor has brought a fresh server up (docs/architecture.md).
    """
    server = supervised.server
    with Load(server) as load:
        time.sleep(1)
        stall(server.stubs()["faq_classifier"][0], stall_s)
        time.sleep(3)
        _wait_healthy(server, START_UP_S + 10)
        recovered_at = load.answers
        time.sleep(3)
    assert load.answers > recovered_at  # answering again after the stall
    assert [w for w in load.wrong if w[0] > recovered_at] == [], load.wrong
    assert all(r.startswith(("exited", "failed the deep check")) for r in supervised.restarts)
    if load.wrong:
        print(f"answered wrongly during the stall, before the restart: {load.wrong}")


@pytest.mark.parametrize(
    ("fault", "why"),
    [(signal.SIGKILL, "exited"), (signal.SIGSTOP, "did not answer")],
    ids=["killed", "frozen"],
)
def test_a_killed_or_frozen_front_door_is_restarted_alone(
    tmp_path: Path, fault: signal.Signals, why: str
) -> None:
    """The front door's process dies, or freezes (its port still accepts connections; only its
    own check shows that nothing is served): it is started again on the same ports, and Triton
    behind it keeps running (no restart). A frozen one is replaced after two missed checks."""
    repository = tmp_path / "repo"
    build("cpu", repository, only=["faq_match"], with_steps=True)
    server = TritonServer(repository, Ports.free(), log_path=tmp_path / "triton.log").start(timeout=180)
    door = FrontDoor(Ports(*free_ports(2), 0), server.ports, log_path=tmp_path / "front-door.log").start(30)
    supervisor = Supervisor(server, check_every_s=1.0, check_timeout_s=2.0, front_door=door)
    thread = threading.Thread(target=supervisor.run, daemon=True)
    thread.start()
    # a dead door is seen within half a second; a frozen one after its missed checks and a stop
    missed = supervisor.failures_to_restart * (supervisor.check_every_s + supervisor.check_timeout_s)
    within_s = 10.0 if fault == signal.SIGKILL else missed + 3 + 10
    try:
        endpoint = Endpoint(f"127.0.0.1:{door.public.http}")
        expected = ask(endpoint, [QUESTION])[0][0]
        triton_pid, door_pid = server.process.pid, door.process.pid
        os.kill(door_pid, fault)
        started = time.monotonic()
        while time.monotonic() - started < within_s and not (door.process and door.process.pid != door_pid):
            time.sleep(0.2)
        assert ask(Endpoint(f"127.0.0.1:{door.public.http}"), [QUESTION], retry_s=10)[0][0] == expected
        assert time.monotonic() - started < within_s
        assert server.process.pid == triton_pid and supervisor.restarts == []
        assert len(supervisor.door_restarts) == 1 and supervisor.door_restarts[0].startswith(why)
    finally:
        supervisor.stop()
        thread.join(timeout=120)
        door.stop()


def test_a_killed_stub_is_replaced_by_reloading_its_model_without_a_restart(tmp_path: Path) -> None:
    """Models under explicit control (the server has an admin key, as `make serve` gives it):
    the dead step alone is reloaded through the repository API; Triton keeps running."""
    repository = tmp_path / "repo"
    build("cpu", repository, only=["faq_match"], with_steps=True)
    server = TritonServer(
        repository, Ports.free(), log_path=tmp_path / "triton.log", admin_key="supervisor-test-admin-key"
    ).start(timeout=180)
    supervisor = Supervisor(server, check_every_s=1.0, check_timeout_s=5.0)
    thread = threading.Thread(target=supervisor.run, daemon=True)
    thread.start()
    try:
        pid = server.process.pid
        with Load(server) as load:
            time.sleep(1)
            os.kill(server.stubs()["faq_preprocess"][0], signal.SIGKILL)
            time.sleep(1)
            took = _wait_healthy(server, 30)
            time.sleep(2)
        assert supervisor.reloads == ["faq_preprocess"] and supervisor.restarts == []
        assert server.process.pid == pid and len(server.stubs()["faq_preprocess"]) == 1
        assert load.wrong == [] and load.answers > 0, vars(load)
        assert took < 30
    finally:
        supervisor.stop()
        thread.join(timeout=120)
