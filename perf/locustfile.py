"""HTTP load on Triton and on the Azure ML scoring server, with real questions and photos.

Run headless by :mod:`perf.run` (or by hand)::

    PERF_WORKLOAD=perf/out/inputs/workload.json PERF_MODEL=faq_match \\
      .venv/bin/locust -f perf/locustfile.py TritonFaqUser --headless -u 8 -r 8 -t 20s \\
      --csv perf/out/locust_faq --host http://127.0.0.1:8000

User classes (name one on the command line):

* ``TritonFaqUser``: ``POST /v2/models/$PERF_MODEL/infer`` with one question, byte for byte
  what ``tritonclient.http`` sends (Triton's binary tensor extension: a JSON header, then the
  raw bytes; binary outputs), the way this project's own client calls the server;
* ``TritonImageUser``: one encoded image in the binary extension (no base64 on the wire);
* ``AzmlFaqUser``: ``POST /score`` with ``{"question": ...}`` (the original's client);
* ``AzmlImageUser``: ``POST /score`` with ``{"image": "<base64>"}``.

Every user is a closed loop with no think time, like one perf_analyzer concurrency slot, on its
own keep-alive geventhttpclient connection, reporting to locust itself (``FastHttpUser``'s
session doubled locust's CPU per request on 2 cores). A response fails unless it is HTTP 200
with the expected fields, and no request asks for compression (``perf.payloads``).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Iterator
from typing import Any, ClassVar
from urllib.parse import urlsplit

from geventhttpclient import HTTPClient
from locust import User, constant, task

from perf.payloads import SHED, azml_bodies, triton_bodies, triton_model

SHED_BACKOFF_S = 0.5


class _Shared:
    """Request bodies built once per process, shared by every simulated user."""

    lock = threading.Lock()
    bodies: ClassVar[dict[str, list[tuple[bytes, dict[str, str]]]]] = {}
    cycles: ClassVar[dict[str, Iterator[tuple[bytes, dict[str, str]]]]] = {}

    @classmethod
    def get(cls, key: str, build: Any) -> tuple[bytes, dict[str, str]]:
        with cls.lock:
            if key not in cls.cycles:
                cls.bodies[key] = build()
                if not cls.bodies[key]:
                    raise RuntimeError(f"workload has no data for {key}")
                cls.cycles[key] = itertools.cycle(cls.bodies[key])
            return next(cls.cycles[key])


class _LoadUser(User):
    abstract = True
    wait_time = constant(0)
    network_timeout = 120.0
    connection_timeout = 30.0
    kind = "faq"
    expect: bytes = b""

    def body(self) -> tuple[bytes, dict[str, str]]:
        raise NotImplementedError

    def path(self) -> str:
        raise NotImplementedError

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

    def post(self, name: str) -> None:
        data, headers = self.body()
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


class _TritonUser(_LoadUser):
    abstract = True
    expect = b'"outputs"'

    def path(self) -> str:
        return f"/v2/models/{triton_model(self.kind)}/infer"

    def body(self) -> tuple[bytes, dict[str, str]]:
        return _Shared.get(f"triton-{self.kind}", lambda: triton_bodies(self.kind))


class _AzmlUser(_LoadUser):
    abstract = True

    def path(self) -> str:
        return "/score"

    def body(self) -> tuple[bytes, dict[str, str]]:
        return _Shared.get(f"azml-{self.kind}", lambda: azml_bodies(self.kind))


class TritonFaqUser(_TritonUser):
    kind = "faq"

    @task
    def ask(self) -> None:
        self.post("triton faq")


class TritonImageUser(_TritonUser):
    kind = "image"

    @task
    def classify(self) -> None:
        self.post("triton image")


class AzmlFaqUser(_AzmlUser):
    kind = "faq"
    expect = b"faq_id"

    @task
    def ask(self) -> None:
        self.post("azmlinfsrv faq")


class AzmlImageUser(_AzmlUser):
    kind = "image"
    expect = b"class_id"

    @task
    def classify(self) -> None:
        self.post("azmlinfsrv image")
