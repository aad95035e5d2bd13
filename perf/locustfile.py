"""HTTP load on Triton and on the Azure ML scoring server, with real questions and photos.

Run by :mod:`perf.run` (``PERF_WORKLOAD``, ``PERF_MODEL``; docs/perf.md). Each user is a closed
loop without think time on its own keep-alive geventhttpclient connection, sending what
``tritonclient.http`` sends (Triton) or the original's JSON (``/score``); a response fails unless
it is HTTP 200 with the expected fields, and a 503 is counted apart as shed."""

from __future__ import annotations

import functools
import itertools
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

from geventhttpclient import HTTPClient
from locust import User, constant, task

from perf.payloads import SHED, azml_bodies, triton_bodies, triton_model

SHED_BACKOFF_S = 0.5


@functools.cache
def _cycle(source: str, kind: str) -> Iterator[tuple[bytes, dict[str, str]]]:
    """Request bodies built once per process and shared by every simulated user (greenlets:
    nothing here yields, so no lock is needed)."""
    bodies = triton_bodies(kind) if source == "triton" else azml_bodies(kind)
    if not bodies:
        raise RuntimeError(f"workload has no {kind} data")
    return itertools.cycle(bodies)


class _LoadUser(User):
    abstract = True
    wait_time = constant(0)
    network_timeout = 120.0
    connection_timeout = 30.0
    source, kind = "triton", "faq"
    expect = b'"outputs"'

    def path(self) -> str:
        return f"/v2/models/{triton_model(self.kind)}/infer" if self.source == "triton" else "/score"

    def on_start(self) -> None:
        url = urlsplit(self.host or "")
        if url.scheme not in ("http", "https") or not url.hostname:
            raise ValueError(f"--host must be an http(s) URL, not {self.host!r}")
        self.prefix = url.path.rstrip("/")
        self.http = HTTPClient(
            url.hostname,
            url.port or (443 if url.scheme == "https" else 80),
            ssl=url.scheme == "https",
            connection_timeout=self.connection_timeout,
            network_timeout=self.network_timeout,
            concurrency=1,
        )

    def on_stop(self) -> None:
        self.http.close()

    @task
    def post(self) -> None:
        name = f"{self.source} {self.kind}"
        data, headers = next(_cycle(self.source, self.kind))
        backoff = 0.0
        error: Exception | None = None
        content = b""
        start = time.perf_counter()
        try:
            response = self.http.post(self.prefix + self.path(), body=data, headers=headers)
            content = response.read()
            if response.status_code == 503:  # shed by a queue policy: counted apart from served
                name, error = f"{name} {SHED}", ResponseError(f"HTTP 503: {bytes(content[:200])!r}")
                backoff = SHED_BACKOFF_S  # as serving.client's retries do; not asking again at once
            elif response.status_code != 200:
                error = ResponseError(f"HTTP {response.status_code}: {bytes(content[:200])!r}")
            elif self.expect not in content:
                error = ResponseError(f"response without {self.expect!r}: {bytes(content[:200])!r}")
        except Exception as exc:  # connection refused or reset, timeout: a failed request
            error = exc
        self.environment.events.request.fire(
            request_type="POST",
            name=name,
            response_time=(time.perf_counter() - start) * 1000.0,
            response_length=len(content),
            exception=error,
            context={},
        )
        if backoff:
            time.sleep(backoff)  # gevent-patched by locust: this user waits, the others run


class ResponseError(Exception):
    """An answer that does not count: not HTTP 200, or without the expected fields."""


class TritonFaqUser(_LoadUser):
    kind = "faq"


class TritonImageUser(_LoadUser):
    kind = "image"


class AzmlFaqUser(_LoadUser):
    source, kind, expect = "azmlinfsrv", "faq", b"faq_id"


class AzmlImageUser(_LoadUser):
    source, kind, expect = "azmlinfsrv", "image", b"class_id"
