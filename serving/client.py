"""How every client of the project reaches a Triton server: local, Kubernetes or Azure ML.

One place builds the tritonclient object (HTTP or gRPC, plain or TLS) and the headers
(an API key for ``--http-restricted-api``, or a Bearer token for an Azure ML endpoint), so
the FAQ client, the image client, the web app and the load tests all behave the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Literal
from urllib.parse import urlparse

import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient

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
