"""Keep the local Triton serving: restart it when it exits or fails the deep check.

Triton 2.51's Python backend cannot survive a stub that stalls for more than its hard-coded 1 s
(the whole server aborts) and never replaces a stub that died (its ensemble fails every request
while ``/v2/health/*`` stay green). So the server is watched from outside: its process every
half second, and every ensemble through the deep check (:mod:`serving.health`) every few seconds.
When the deep check reports a step whose stub died and models are under explicit control (the
server has an admin key), the supervisor first reloads just that step through the repository API:
new instances in about a second, the rest of the server untouched. When the process has exited,
or the deep check failed several times in a row, the supervisor says why in its log, stops what
is left (the process group with its stubs, the shared memory) and starts Triton again on the same
ports, with a growing pause between repeated restarts.

Why not supervisord or systemd: they restart a process that exited, but the failure that matters
most here is a server that runs and answers health probes while an ensemble is broken; that takes
the deep check, and the glue around a process manager would be this module again. On Kubernetes
the kubelet is the supervisor: the deep check is the pods' liveness probe.
"""

from __future__ import annotations

import logging
import re
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from serving import health
from serving.front_door import FrontDoor
from serving.triton import TritonError, TritonServer

log = logging.getLogger("serving.supervise")
DEAD_STUB = re.compile(r"Stub process '(.+?)_\d+_\d+' is not healthy")


def describe_exit(code: int) -> str:
    """``-6`` -> ``killed by SIGABRT``; ``1`` -> ``exit status 1``."""
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


@dataclass
class Supervisor:
    """Keeps ``server`` (started by the caller, who reports a first failure) serving until
    :meth:`stop`; ``on_start`` hears of every restart (state files)."""

    server: TritonServer
    check_every_s: float = 5.0
    failures_to_restart: int = 2  # one failure may be a passing stall; two in a row are not
    check_timeout_s: float = 5.0
    start_timeout_s: float = 300.0
    backoff_s: tuple[float, ...] = (1, 2, 4, 8, 16, 30)
    healthy_resets_after_s: float = 60.0
    on_start: Callable[[TritonServer], None] = lambda server: None
    front_door: FrontDoor | None = None  # restarted alone when it exits or stops answering
    restarts: list[str] = field(default_factory=list)  # why each restart happened, in order
    reloads: list[str] = field(default_factory=list)  # the models reloaded instead of a restart
    door_restarts: list[str] = field(default_factory=list)  # why the front door was restarted alone
    _door_misses: int = 0  # its own checks failed in a row
    _stop: threading.Event = field(default_factory=threading.Event)

    def stop(self) -> None:
        self._stop.set()

    def run(self) -> None:
        """Keep the (started) server serving until :meth:`stop`; stop it then."""
        attempt = 0
        try:
            while not self._stop.is_set():
                started = time.monotonic()
                reason = self._watch() if self.server.process is not None else "did not start"
                if reason is None:
                    return
                if time.monotonic() - started > self.healthy_resets_after_s:
                    attempt = 0  # it served for a while: a new fault, not a crash loop
                pause = self.backoff_s[min(attempt, len(self.backoff_s) - 1)]
                attempt += 1
                self.restarts.append(reason)
                log.warning(
                    "Triton %s; restarting it in %.0f s (restart %d)", reason, pause, len(self.restarts)
                )
                self.server.stop(timeout=3)  # it is broken: no long drain; its group and shared memory go
                if self._stop.wait(pause):
                    return
                self._start()
        finally:
            self.server.stop()

    def _start(self) -> bool:
        try:
            self.server.start(self.start_timeout_s)
        except TritonError as exc:
            log.error("Triton did not start: %s", exc)
            return False
        log.info("Triton serving on HTTP %s (pid %s)", self.server.http_url, self.server.process.pid)
        self.on_start(self.server)
        return True

    def _failed_checks(self) -> list[health.Verdict]:
        verdicts = health.check(self.server.http_url, self.check_timeout_s, self.server.admin_key)
        return [v for v in verdicts if not v.healthy]

    def _reload_broken(self, bad: list[health.Verdict]) -> bool:
        """Reload the steps whose stub Triton reports dead, where models are under explicit
        control; whether any was reloaded (the caller checks again)."""
        broken = sorted({m for v in bad for m in DEAD_STUB.findall(v.detail)})
        if not broken or not self.server.admin_key:
            return False
        for model in broken:
            try:
                self.server.reload(model)
            except OSError as exc:  # refused, or the server is going down: a restart follows
                log.warning("reloading %s failed: %s", model, exc)
                return False
            log.warning("reloaded %s: its stub process had died", model)
            self.reloads.append(model)
        return True

    def _keep_front_door(self, probe: bool) -> None:
        """Restart the front door alone when it exited, when it could not start last time, or,
        at a check (``probe``), when it failed its own check that many times in a row (frozen:
        its ports still accept connections, but nothing is served)."""
        door, why = self.front_door, ""
        if door is None:
            return
        if door.process is not None and (code := door.exit_code()) is not None:
            why = f"exited ({describe_exit(code)})"
        elif door.process is not None:
            if not probe:
                return
            if door.answers(self.check_timeout_s):
                self._door_misses = 0
                return
            self._door_misses += 1
            log.warning(
                "the front door failed its check (%d of %d)", self._door_misses, self.failures_to_restart
            )
            if self._door_misses < self.failures_to_restart:
                return
            why = f"did not answer {self._door_misses} checks in a row"
        if why:
            log.warning("the front door %s; restarting it", why)
            self.door_restarts.append(why)
            door.stop(timeout=3)
        self._door_misses = 0
        try:
            door.start(30)
            self.on_start(self.server)  # its new pid into the state file
        except Exception as exc:  # a port taken meanwhile: tried again at the next tick
            log.error("the front door did not start: %s", exc)

    def _watch(self) -> str | None:
        """Why the server must be restarted, or None once :meth:`stop` was called."""
        details: list[str] = []  # of the current run of failed checks
        next_check = time.monotonic() + self.check_every_s
        while not self._stop.wait(0.5):
            code = self.server.exit_code()
            if code is not None:
                return f"exited ({describe_exit(code)})"
            checking = time.monotonic() >= next_check
            self._keep_front_door(probe=checking)
            if not checking:
                continue
            bad = self._failed_checks()
            if bad and self._reload_broken(bad):
                bad = self._failed_checks()
            next_check = time.monotonic() + self.check_every_s
            if not bad:
                details = []
                continue
            details.append("; ".join(f"{v.model}: {v.detail[:160]}" for v in bad))
            log.warning(
                "deep check failed (%d of %d): %s", len(details), self.failures_to_restart, details[-1]
            )
            if len(details) >= self.failures_to_restart:
                return f"failed the deep check {len(details)} times in a row (first: {details[0]})"
        return None
