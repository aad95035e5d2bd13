"""How every client of the project reaches a Triton server: local, Kubernetes or Azure ML.

One place builds the tritonclient object (HTTP or gRPC, plain or TLS) and the headers
(an API key for ``--http-restricted-api``, or a Bearer token for an Azure ML endpoint), makes
the inference call (:func:`infer`) and says what went wrong in one taxonomy
(:class:`ClientError`: :class:`Unreachable`, :class:`RejectedInput`, :class:`Unauthorized`,
:class:`NotReady`, :class:`ServerError`), so the FAQ client, the image client, the web app and
the load tests all behave the same.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Literal
from urllib.parse import urlparse

import numpy as np
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

log = logging.getLogger(__name__)
Protocol = Literal["http", "grpc"]
API_KEY_HEADER = "api-key"  # the header name the manifests pass to --http-restricted-api
# Triton checks a --grpc-restricted-protocol key as gRPC metadata "triton-grpc-protocol-<key>";
# gRPC metadata names must also be lower case.
GRPC_API_KEY_HEADER = f"triton-grpc-protocol-{API_KEY_HEADER}"


@dataclass(frozen=True)
class Endpoint:
    """A Triton server address. ``url`` may be ``host:port`` or ``https://host[:port]``."""

    url: str = "localhost"  # no port: 8000 for HTTP, 8001 for gRPC (443 with TLS)
    protocol: Protocol = "http"
    api_key: str | None = None
    bearer_token: str | None = None
    ssl: bool = False
    extra_headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_options(
        cls,
        url: str | None,
        grpc: bool = False,
        api_key: str | None = None,
        bearer_token: str | None = None,
        ssl: bool = False,
    ) -> Endpoint:
        """The endpoint the command-line clients build from their ``--url/--grpc/--api-key`` flags."""
        return cls(
            url=url or "localhost",
            protocol="grpc" if grpc else "http",
            api_key=api_key,
            bearer_token=bearer_token,
            ssl=ssl,
        )

    @property
    def address(self) -> str:
        """``host:port`` as tritonclient wants it (the scheme is dropped; it sets ``ssl``)."""
        parsed = urlparse(self.url if "://" in self.url else f"//{self.url}")
        host = parsed.hostname or "localhost"
        default = 443 if self.use_ssl else (8000 if self.protocol == "http" else 8001)
        return f"{host}:{parsed.port or default}"

    @property
    def use_ssl(self) -> bool:
        return self.ssl or self.url.startswith("https://")

    def headers(self) -> dict[str, str]:
        headers = dict(self.extra_headers)
        grpc = self.protocol == "grpc"
        if self.api_key:
            headers[GRPC_API_KEY_HEADER if grpc else API_KEY_HEADER] = self.api_key
        if self.bearer_token:
            headers["authorization" if grpc else "Authorization"] = f"Bearer {self.bearer_token}"
        return headers

    def module(self) -> ModuleType:
        """The tritonclient module (``http`` or ``grpc``) whose ``InferInput`` to use."""
        return httpclient if self.protocol == "http" else grpcclient

    def client(self, **kwargs: Any) -> httpclient.InferenceServerClient | grpcclient.InferenceServerClient:
        if self.protocol == "http":
            return httpclient.InferenceServerClient(self.address, ssl=self.use_ssl, **kwargs)
        return grpcclient.InferenceServerClient(self.address, ssl=self.use_ssl, **kwargs)


# --- one inference call, one error taxonomy ---------------------------------------------------


class ClientError(Exception):
    """Something kept an inference from being answered. Catch the subclass that matters to you.

    ``message`` is the server's own reason (Triton's ensemble prefix dropped) or the transport
    error; ``status`` is what tritonclient reported (an HTTP code or a gRPC status name).
    """

    def __init__(self, message: str, status: str = "", model: str = "") -> None:
        super().__init__(message)
        self.message, self.status, self.model = message, status, model


class Unreachable(ClientError):
    """No server answered: connection refused or reset, DNS, TLS, timeout, gRPC UNAVAILABLE, or a
    gateway in front of it saying so (HTTP 502, 504)."""


class RejectedInput(ClientError):
    """The server refused this request's input (HTTP 400, gRPC INVALID_ARGUMENT): fix the input."""


class Unauthorized(ClientError):
    """The server wants credentials it did not get (an API key or a Bearer token)."""


class NotReady(ClientError):
    """The model is unknown, not loaded yet, or one of its steps is not healthy; or the server
    shed the request under overload (HTTP 503, a queue policy). Asking again later may work."""


class ServerError(ClientError):
    """The server failed on a request it accepted (HTTP 500, gRPC INTERNAL and the rest)."""


# 502 and 504 come from a gateway in front of Triton (the front door, an ingress) that got no
# answer from it: the server restarting, as far as a client can tell.
_UNREACHABLE = {"502", "504", "StatusCode.UNAVAILABLE", "StatusCode.DEADLINE_EXCEEDED"}
_UNAUTHORIZED = {"401", "403", "StatusCode.UNAUTHENTICATED", "StatusCode.PERMISSION_DENIED"}
_REJECTED = {"400", "StatusCode.INVALID_ARGUMENT"}
_NOT_FOUND = {"404", "503", "StatusCode.NOT_FOUND"}
# Triton answers these with a generic 400/500, so their words are how they can be told apart.
_NOT_READY_WORDS = (
    "unknown model",
    "not at ready state",
    "is not ready",
    "no available versions",
    "is not healthy",
)


def error_from(exc: BaseException, model: str = "") -> ClientError:
    """The :class:`ClientError` that ``exc`` (from tritonclient or the transport) stands for."""
    from tritonclient.utils import InferenceServerException

    if isinstance(exc, ClientError):
        return exc
    if not isinstance(exc, InferenceServerException):
        if isinstance(exc, OSError):  # refused, reset, timed out, name unknown, TLS
            return Unreachable(str(exc) or type(exc).__name__, model=model)
        return ServerError(f"{type(exc).__name__}: {exc}", model=model)
    status = str(exc.status() or "")
    message = (exc.message() or str(exc)).strip()
    for prefix in (f"in ensemble '{model}', ", f"[{status}] "):
        if message.startswith(prefix):
            message = message[len(prefix) :]
    lowered = message.lower()
    if status in _UNREACHABLE or (not status and "connect" in lowered):
        kind: type[ClientError] = Unreachable
    elif status in _UNAUTHORIZED:
        kind = Unauthorized
    elif status in _NOT_FOUND or any(word in lowered for word in _NOT_READY_WORDS):
        kind = NotReady
    elif status in _REJECTED:
        kind = RejectedInput
    else:
        kind = ServerError
    return kind(message, status, model)


RETRYABLE: tuple[type[ClientError], ...] = (Unreachable, NotReady)
"""What a restart of the server looks like from outside: nobody answers, or a model or one of its
steps is not ready yet. Inference has no side effects, so asking again is always safe."""


def infer(
    endpoint: Endpoint,
    model: str,
    inputs: dict[str, np.ndarray],
    outputs: Sequence[str],
    *,
    client: Any | None = None,
    timeout_s: float | None = None,
    retry_s: float = 0.0,
) -> dict[str, np.ndarray]:
    """One inference request; returns each requested output, raises a :class:`ClientError`.

    ``inputs`` maps tensor names to arrays (``object`` arrays of ``bytes`` for TYPE_STRING).
    Pass a ``client`` from :meth:`Endpoint.client` to reuse its connection across calls.
    ``retry_s`` > 0 rides through a server restart: :data:`RETRYABLE` failures are retried with
    exponential backoff (0.25 s doubling to 2 s) for at most that long, then the last one is raised.
    """
    started, delay, attempts = time.monotonic(), 0.25, 0
    while True:
        attempts += 1
        try:
            return _infer_once(endpoint, model, inputs, outputs, client, timeout_s)
        except RETRYABLE as exc:
            waited = time.monotonic() - started
            if waited + delay > retry_s:
                if attempts > 1:
                    exc.message += f" (gave up after {attempts} attempts in {waited:.0f} s)"
                    exc.args = (exc.message,)
                raise
            log.info("%s: %s; retrying in %.2f s", model, type(exc).__name__, delay)
            time.sleep(delay)
            delay = min(delay * 2, 2.0)


def _infer_once(
    endpoint: Endpoint,
    model: str,
    inputs: dict[str, np.ndarray],
    outputs: Sequence[str],
    client: Any | None,
    timeout_s: float | None,
) -> dict[str, np.ndarray]:
    from tritonclient.utils import np_to_triton_dtype

    module = endpoint.module()
    tensors = []
    for name, array in inputs.items():
        tensor = module.InferInput(name, list(array.shape), np_to_triton_dtype(array.dtype))
        tensor.set_data_from_numpy(array)
        tensors.append(tensor)
    kwargs: dict[str, Any] = {"headers": endpoint.headers() or None}
    timeouts: dict[str, float] = {}
    if timeout_s is not None and endpoint.protocol == "grpc":
        kwargs["client_timeout"] = timeout_s
    elif timeout_s is not None:  # the HTTP client takes its timeouts when it is made
        timeouts = {"connection_timeout": timeout_s, "network_timeout": timeout_s}
    owned = client is None
    try:
        client = client or endpoint.client(**timeouts)
        requested = [module.InferRequestedOutput(name) for name in outputs]
        result = client.infer(model, tensors, outputs=requested, **kwargs)
    except Exception as exc:
        raise error_from(exc, model) from exc
    finally:
        if owned and client is not None:
            client.close()
    return {name: result.as_numpy(name) for name in outputs}


def as_text(value: bytes | str) -> str:
    """A TYPE_STRING element as text."""
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
