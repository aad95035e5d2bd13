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
* ``FRONT_DOOR=1``: HAProxy with ``/opt/app/front-door/haproxy.cfg`` (the rules of
  docs/architecture.md, "The front door") takes ports 8000/8001 and Triton listens behind it
  on loopback 8010/8011. For Azure ML, which runs this image alone; a Kubernetes pod runs the
  front door as its own container instead.
* ``DEEP_HEALTH_PORT``: when set, ``python -m serving.health --serve`` answers HTTP probes there
  with the deep check (one real request through every ensemble), for Azure ML, whose liveness
  and readiness probes can only GET a path; it gets the admin key to list the models. With
  ``FRONT_DOOR=1`` it also asks the door's own check, so that a dead or frozen HAProxy fails the
  probe and Azure ML replaces the container (nothing else in it restarts the door).

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
FRONT_DOOR_CONFIG = "/opt/app/front-door/haproxy.cfg"
BEHIND_DOOR = ("--http-address=127.0.0.1", "--http-port=8010", "--grpc-address=127.0.0.1", "--grpc-port=8011")
BASE_ARGS = (
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
    ports = BEHIND_DOOR if env.get("FRONT_DOOR") == "1" else ("--http-port=8000", "--grpc-port=8001")
    return ["tritonserver", f"--model-repository={repository}", *ports, *BASE_ARGS, *security, *extra]


def front_door(env: Mapping[str, str]) -> tuple[list[str], dict[str, str]] | None:
    """HAProxy's command and environment for ``FRONT_DOOR=1``, or None."""
    if env.get("FRONT_DOOR") != "1":
        return None
    ports = {"FRONT_DOOR_HTTP_PORT": "8000", "FRONT_DOOR_GRPC_PORT": "8001"}
    behind = {"TRITON_ADDRESS": "127.0.0.1", "TRITON_HTTP_PORT": "8010", "TRITON_GRPC_PORT": "8011"}
    limits = {"MAX_BODY_BYTES": "16777216", "FRONT_DOOR_REQUEST_TIMEOUT": "10s"}
    door_env = {**env, "FRONT_DOOR_ADDRESS": "0.0.0.0", **ports, **behind, **limits}
    return ["haproxy", "-db", "-f", FRONT_DOOR_CONFIG], door_env


def health_command(env: Mapping[str, str]) -> list[str] | None:
    """The deep check's HTTP server for ``DEEP_HEALTH_PORT``, or None when it is not asked for."""
    port = env.get("DEEP_HEALTH_PORT")
    if not port:
        return None
    if not port.isdigit():
        raise ConfigError(f"DEEP_HEALTH_PORT must be a port number, not {port!r}")
    door = env.get("FRONT_DOOR") == "1"  # then the probe also asks the door in this container
    flags = f"--serve {port} --url localhost:{8010 if door else 8000} --timeout 4"
    flags += " --front-door localhost:8000" if door else ""
    return [sys.executable, "-m", "serving.health", *flags.split()]


def main(argv: Sequence[str] | None = None) -> None:
    env = dict(os.environ)
    env[ADMIN_KEY_ENV] = env.get(ADMIN_KEY_ENV) or new_key()  # shared with the deep check only
    try:
        command = server_command(env, sys.argv[1:] if argv is None else argv)
        probe, door = health_command(env), front_door(env)
    except (ConfigError, ValueError) as exc:
        sys.exit(f"entrypoint: {exc}")
    if probe:  # children of this process, which becomes tritonserver below
        subprocess.Popen(probe, env=env)
    if door:
        subprocess.Popen(door[0], env=door[1])
    print(f"entrypoint: starting tritonserver on {command[1].split('=', 1)[1]}", flush=True)
    os.execvp(command[0], command)


if __name__ == "__main__":
    main()
