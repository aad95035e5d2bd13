"""The one definition of how a deployed Triton server is locked down.

Triton 2.51 can require a header on each API group (``--http-restricted-api`` for HTTP,
``--grpc-restricted-protocol`` for gRPC). Three tiers:

* **open**: ``health`` only, so that kubelet and Azure ML probes work without a secret;
* **client**: ``inference``, ``metadata`` and ``model-config`` need the ``api-key`` header
  (the same name as ``serving.client.API_KEY_HEADER``); this key is handed to clients;
* **admin**: ``model-repository`` (load/unload/index), ``shared-memory``, ``statistics``,
  ``trace`` and ``logging`` need a different header, ``admin-key``, whose value lives in its
  own Secret and is never given to clients or put behind the Ingress. On top of that the
  server runs with ``--model-control-mode=none``, so even the admin key cannot load or unload
  a model: the repository API can list models, nothing more.

The Kubernetes Deployment, the container entrypoint and the local-server test all build
their flags from :func:`server_security_args`; a unit test checks that the manifests carry
exactly these arguments. Standard library only: this module runs inside the container.
"""

from __future__ import annotations

import re
import secrets

API_KEY_HEADER = "api-key"  # must equal serving.client.API_KEY_HEADER (a unit test checks)
ADMIN_KEY_HEADER = "admin-key"
API_KEY_ENV = "TRITON_API_KEY"
ADMIN_KEY_ENV = "TRITON_ADMIN_KEY"
# Names of the Kubernetes Secret and its keys that hold the two values.
SECRET_NAME = "triton-api-keys"
SECRET_API_KEY = "api-key"
SECRET_ADMIN_KEY = "admin-key"

OPEN_APIS: tuple[str, ...] = ("health",)
CLIENT_APIS: tuple[str, ...] = ("inference", "metadata", "model-config")
ADMIN_APIS: tuple[str, ...] = ("model-repository", "shared-memory", "statistics", "trace", "logging")
ALL_APIS = frozenset((*OPEN_APIS, *CLIENT_APIS, *ADMIN_APIS))

# Triton splits the flag value on ':' and '=' and the API list on ','; a key with any of
# those (or spaces) would be cut silently. Hex or URL-safe base64 keys are fine.
_KEY_PATTERN = re.compile(r"^[A-Za-z0-9_\-]{16,256}$")
# A Kubernetes env reference such as $(TRITON_API_KEY), expanded by the kubelet at start.
_ENV_REFERENCE = re.compile(r"^\$\([A-Z_][A-Z0-9_]*\)$")


class InvalidKeyError(ValueError):
    """A key Triton would misparse, or one too short to be a secret."""


def check_key(value: str) -> str:
    """Return ``value`` if it can be a header key for Triton; env references pass as they are."""
    if _ENV_REFERENCE.match(value) or _KEY_PATTERN.match(value):
        return value
    raise InvalidKeyError(
        "API keys must be 16-256 characters of [A-Za-z0-9_-] (for example `openssl rand -hex 32`); "
        "Triton splits the flag on ',', ':' and '='"
    )


def new_key() -> str:
    """A fresh random key (64 hex characters)."""
    return secrets.token_hex(32)


def server_security_args(api_key: str, admin_key: str) -> list[str]:
    """Triton flags that restrict the client and admin API groups on HTTP and gRPC.

    ``api_key``/``admin_key`` are the header values, or ``$(ENV)`` references that the
    kubelet expands from a Secret.
    """
    check_key(api_key)
    check_key(admin_key)
    if api_key == admin_key:
        raise InvalidKeyError("the admin key must differ from the client API key")
    client = ",".join(CLIENT_APIS)
    admin = ",".join(ADMIN_APIS)
    return [
        "--model-control-mode=none",
        f"--http-restricted-api={client}:{API_KEY_HEADER}={api_key}",
        f"--http-restricted-api={admin}:{ADMIN_KEY_HEADER}={admin_key}",
        f"--grpc-restricted-protocol={client}:{API_KEY_HEADER}={api_key}",
        f"--grpc-restricted-protocol={admin}:{ADMIN_KEY_HEADER}={admin_key}",
    ]


def kubernetes_security_args() -> list[str]:
    """The same flags with ``$(ENV)`` references, as written in the Kubernetes Deployment."""
    return server_security_args(f"$({API_KEY_ENV})", f"$({ADMIN_KEY_ENV})")
