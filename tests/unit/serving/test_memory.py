"""Resident memory per served process, as `make status` shows it and the soak records it."""

from __future__ import annotations

import os
import subprocess

from serving.triton import memory, resident_kib


def test_resident_memory_of_live_and_gone_processes() -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    mine = resident_kib([os.getpid()])
    assert (
        mine > 1024 and resident_kib([gone.pid]) == 0 and resident_kib([os.getpid()] * 2) >= 2 * mine - 1024
    )
    found = memory({"triton_pid": os.getpid(), "front_door_pid": None}, {"b": [gone.pid], "a": [os.getpid()]})
    assert list(found) == ["tritonserver", "a", "b"] and found["b"] == 0 and found["a"] > 0
