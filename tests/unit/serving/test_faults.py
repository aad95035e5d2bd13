"""The injected faults do what they say to real processes (``sleep`` stand-ins for stubs)."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
from collections.abc import Iterator

import psutil
import pytest

from serving.faults import inject, stall


@pytest.fixture()
def processes() -> Iterator[dict[str, subprocess.Popen]]:
    started = {name: subprocess.Popen(["sleep", "60"]) for name in ("b_model", "a_model", "server")}
    yield started
    for process in started.values():
        process.kill()
        process.wait()


def test_a_stall_stops_the_process_for_its_length_then_lets_it_go_on(
    processes: dict[str, subprocess.Popen],
) -> None:
    stub = psutil.Process(processes["a_model"].pid)
    thread = threading.Thread(target=stall, args=(stub.pid, 0.6))
    thread.start()
    time.sleep(0.3)
    assert stub.status() == psutil.STATUS_STOPPED
    thread.join()
    assert stub.status() == psutil.STATUS_SLEEPING


def test_stubs_are_hit_in_name_order_and_the_server_by_its_pid(
    processes: dict[str, subprocess.Popen],
) -> None:
    stubs = {name: [processes[name].pid] for name in ("b_model", "a_model")}
    server = processes["server"].pid
    assert inject("kill_stub", stubs, server, number=0) == "a_model"
    assert processes["a_model"].wait(5) == -signal.SIGKILL
    assert processes["b_model"].poll() is None and processes["server"].poll() is None
    assert inject("freeze_server", stubs, server) == "tritonserver"
    time.sleep(0.2)
    assert psutil.Process(server).status() == psutil.STATUS_STOPPED
    assert inject("kill_server", stubs, server) == "tritonserver"
    assert processes["server"].wait(5) == -signal.SIGKILL
    with pytest.raises(ValueError, match="unknown fault"):
        inject("flood", stubs, server, number=1)
    assert processes["b_model"].poll() is None
