"""Container entrypoint: start ``tritonserver`` with the project's security flags.

Used by ``docker run`` and by Azure ML (the Kubernetes Deployment spells the same flags out
in its ``args``). Configuration comes from the environment:

* ``MODEL_REPOSITORY`` (default ``/models/gpu``); ``$VARS`` in it are expanded, so Azure ML
  can point at the registered model with ``${AZUREML_MODEL_DIR}/model_repository_gpu``.
* ``TRITON_API_KEY``: header value required for inference, metadata and model config. The
  server refuses to start without it, unless ``TRITON_AUTH=endpoint``: behind an Azure ML
  online endpoint (``auth_mode: key``) the endpoint checks its key before a request reaches
  the container, so the client APIs are left open inside.
* ``TRITON_ADMIN_KEY``: header value for the repository, shared-memory, statistics, trace and
  logging APIs; when unset a random key is generated and never shown, which locks them.
* ``DEEP_HEALTH_PORT``: when set, ``python -m serving.health --serve`` answers HTTP probes there
  with the deep check (one real request through every ensemble), for Azure ML, whose liveness
  and readiness probes can only GET a path; it gets the admin key to list the models.

Extra command-line arguments are passed on to ``tritonserver``. Python 3.10, standard
library only: this runs on the image's own Python.
"""

from __future__ import annotations

import os
import string
import subprocess
import sys
from collections.abc import Mapping, Sequence

from deploy.security import (
    ADMIN_APIS,
    ADMIN_KEY_ENV,
    ADMIN_KEY_HEADER,
    API_KEY_ENV,
    check_key,
    new_key,
    server_security_args,
)

DEFAULT_REPOSITORY = "/models/gpu"
BASE_ARGS = (
    "--http-port=8000",
    "--grpc-port=8001",
    "--metrics-port=8002",
    "--strict-readiness=true",
    "--exit-timeout-secs=30",
    "--log-verbose=0",
)


class ConfigError(RuntimeError):
    """The environment does not describe a safe server."""


def server_command(env: Mapping[str, str], extra: Sequence[str] = ()) -> list[str]:
    """The ``tritonserver`` command line for ``env`` (pure: tested without a container)."""
    repository = string.Template(env.get("MODEL_REPOSITORY", DEFAULT_REPOSITORY)).safe_substitute(env)
    if "$" in repository:
        raise ConfigError(f"MODEL_REPOSITORY has an unset variable: {repository}")
    admin_key = env.get(ADMIN_KEY_ENV) or new_key()
    auth = env.get("TRITON_AUTH", "key")
    if auth == "key":
        api_key = env.get(API_KEY_ENV)
        if not api_key:
            raise ConfigError(
                f"{API_KEY_ENV} is not set: refusing to serve inference without a key "
                "(set TRITON_AUTH=endpoint only behind an endpoint that enforces its own key)"
            )
        security = server_security_args(api_key, admin_key)
    elif auth == "endpoint":
        check_key(admin_key)
        security = [
            "--model-control-mode=none",
            f"--http-restricted-api={','.join(ADMIN_APIS)}:{ADMIN_KEY_HEADER}={admin_key}",
            f"--grpc-restricted-protocol={','.join(ADMIN_APIS)}:{ADMIN_KEY_HEADER}={admin_key}",
        ]
    else:
        raise ConfigError(f"TRITON_AUTH must be 'key' or 'endpoint', not {auth!r}")
    return ["tritonserver", f"--model-repository={repository}", *BASE_ARGS, *security, *extra]


def health_command(env: Mapping[str, str]) -> list[str] | None:
    """The deep check's HTTP server for ``DEEP_HEALTH_PORT``, or None when it is not asked for."""
    port = env.get("DEEP_HEALTH_PORT")
    if not port:
        return None
    if not port.isdigit():
        raise ConfigError(f"DEEP_HEALTH_PORT must be a port number, not {port!r}")
    flags = f"--serve {port} --url localhost:8000 --timeout 4"
    return [sys.executable, "-m", "serving.health", *flags.split()]


def main(argv: Sequence[str] | None = None) -> None:
    env = dict(os.environ)
    env[ADMIN_KEY_ENV] = env.get(ADMIN_KEY_ENV) or new_key()  # shared with the deep check only
    try:
        command = server_command(env, sys.argv[1:] if argv is None else argv)
        probe = health_command(env)
    except (ConfigError, ValueError) as exc:
        sys.exit(f"entrypoint: {exc}")
    if probe:  # a child of this process, which becomes tritonserver below
        subprocess.Popen(probe, env=env)
    print(f"entrypoint: starting tritonserver on {command[1].split('=', 1)[1]}", flush=True)
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()
