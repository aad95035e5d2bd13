"""Faults the served stack must heal by itself, injected on purpose: a Python-backend stub
stalled past Triton 2.51's hard-coded 1 s health deadline (what a host stall does), a stub
killed, the server killed, the server frozen for good (hung: it still accepts connections).
The soak benchmark and the fault-injection tests inject them here and wait for
:func:`serving.health.healthy_after`."""

from __future__ import annotations

import os
import signal
import time

FAULTS = ("stall", "kill_stub", "kill_server", "freeze_server")
STALL_S = 1.5


def stall(pid: int, seconds: float = STALL_S) -> None:
    """Freeze ``pid`` for ``seconds`` (SIGSTOP, then SIGCONT)."""
    os.kill(pid, signal.SIGSTOP)
    try:
        time.sleep(seconds)
    finally:
        os.kill(pid, signal.SIGCONT)


def inject(fault: str, stubs: dict[str, list[int]], server_pid: int, number: int = 0) -> str:
    """Inject ``fault`` (one of :data:`FAULTS`); returns whom it hit: ``tritonserver``, or the
    model whose first stub was hit (the ``number``-th of ``stubs``' models, in name order)."""
    if fault in ("kill_server", "freeze_server"):  # frozen: SIGSTOP, never continued
        os.kill(server_pid, signal.SIGKILL if fault == "kill_server" else signal.SIGSTOP)
        return "tritonserver"
    model = sorted(stubs)[number % len(stubs)]
    if fault == "kill_stub":
        os.kill(stubs[model][0], signal.SIGKILL)
    elif fault == "stall":
        stall(stubs[model][0])
    else:
        raise ValueError(f"unknown fault {fault!r}; choose from {FAULTS}")
    return model
