"""The API-key flags shared by the manifests, the container entrypoint and the server test."""

from __future__ import annotations

import pytest

from deploy import entrypoint, security
from serving.client import API_KEY_HEADER, Endpoint

# The API groups Triton 2.51 accepts in --http-restricted-api (from `tritonserver --help`).
TRITON_251_APIS = {
    "health",
    "metadata",
    "inference",
    "shared-memory",
    "model-config",
    "model-repository",
    "statistics",
    "trace",
    "logging",
}
KEY = "k" * 32
ADMIN = "a" * 32


def test_header_name_is_the_clients() -> None:
    assert security.API_KEY_HEADER == API_KEY_HEADER
    assert Endpoint(api_key=KEY).headers() == {API_KEY_HEADER: KEY}


def test_every_api_group_is_in_exactly_one_tier() -> None:
    tiers = [set(security.OPEN_APIS), set(security.CLIENT_APIS), set(security.ADMIN_APIS)]
    assert set().union(*tiers) == TRITON_251_APIS
    assert sum(len(t) for t in tiers) == len(TRITON_251_APIS)
    assert security.OPEN_APIS == ("health",)  # probes must work without a key
    assert "model-repository" in security.ADMIN_APIS and "inference" in security.CLIENT_APIS


def test_server_args() -> None:
    args = security.server_security_args(KEY, ADMIN)
    assert "--model-control-mode=none" in args
    assert f"--http-restricted-api=inference,metadata,model-config:api-key={KEY}" in args
    assert (
        f"--http-restricted-api=model-repository,shared-memory,statistics,trace,logging:admin-key={ADMIN}"
        in args
    )
    assert sum(a.startswith("--grpc-restricted-protocol=") for a in args) == 2


def test_kubernetes_args_reference_env_not_values() -> None:
    args = security.kubernetes_security_args()
    assert any(a.endswith(":api-key=$(TRITON_API_KEY)") for a in args)
    assert any(a.endswith(":admin-key=$(TRITON_ADMIN_KEY)") for a in args)


@pytest.mark.parametrize(
    "bad", ["short", "has:colon" * 3, "has,comma" * 3, "has=equals" * 3, "sp ace" * 5, ""]
)
def test_keys_triton_would_misparse_are_rejected(bad: str) -> None:
    with pytest.raises(security.InvalidKeyError):
        security.server_security_args(bad, ADMIN)


def test_admin_key_must_differ() -> None:
    with pytest.raises(security.InvalidKeyError):
        security.server_security_args(KEY, KEY)


def test_new_keys_are_valid_and_fresh() -> None:
    a, b = security.new_key(), security.new_key()
    assert a != b and security.check_key(a) == a


def test_entrypoint_requires_a_key() -> None:
    with pytest.raises(entrypoint.ConfigError, match="TRITON_API_KEY"):
        entrypoint.server_command({})


def test_entrypoint_with_keys_uses_the_shared_flags() -> None:
    cmd = entrypoint.server_command({"TRITON_API_KEY": KEY, "TRITON_ADMIN_KEY": ADMIN}, ["--log-verbose=1"])
    assert cmd[0] == "tritonserver"
    assert cmd[1] == "--model-repository=/models/gpu"
    assert cmd[-1] == "--log-verbose=1"
    for arg in security.server_security_args(KEY, ADMIN):
        assert arg in cmd


def test_entrypoint_endpoint_mode_still_locks_admin_apis_with_a_random_key() -> None:
    cmd = entrypoint.server_command(
        {
            "TRITON_AUTH": "endpoint",
            "MODEL_REPOSITORY": "${AZUREML_MODEL_DIR}/repo",
            "AZUREML_MODEL_DIR": "/var/azureml-app/azureml-models/m/1",
        }
    )
    assert "--model-repository=/var/azureml-app/azureml-models/m/1/repo" in cmd
    assert not any("inference" in a for a in cmd)
    admin = [a for a in cmd if a.startswith("--http-restricted-api=")]
    assert len(admin) == 1 and admin[0].startswith("--http-restricted-api=model-repository,")
    assert len(admin[0].rsplit("=", 1)[1]) == 64  # generated key
    assert "--model-control-mode=none" in cmd


def test_entrypoint_rejects_unset_variables_and_unknown_modes() -> None:
    with pytest.raises(entrypoint.ConfigError, match="unset variable"):
        entrypoint.server_command({"TRITON_AUTH": "endpoint", "MODEL_REPOSITORY": "$NOPE_NOT_SET/x"})
    with pytest.raises(entrypoint.ConfigError, match="TRITON_AUTH"):
        entrypoint.server_command({"TRITON_AUTH": "none", "TRITON_API_KEY": KEY})


def test_cloud_endpoint_address_and_headers() -> None:
    """What the FAQ and image clients get for an AKS Ingress or an Azure ML endpoint URL."""
    aks = Endpoint(url="https://triton.example.com", api_key=KEY)
    assert aks.use_ssl and aks.address == "triton.example.com:443"
    aml = Endpoint(url="https://ep.westeurope.inference.ml.azure.com/", bearer_token="tok")
    assert aml.address == "ep.westeurope.inference.ml.azure.com:443"
    assert aml.headers() == {"Authorization": "Bearer tok"}
    assert Endpoint(url="localhost:8000").use_ssl is False


def test_grpc_key_uses_tritons_metadata_name() -> None:
    """Triton reads a --grpc-restricted-protocol key from metadata `triton-grpc-protocol-<key>`."""
    grpc = Endpoint(url="localhost:8001", protocol="grpc", api_key=KEY, bearer_token="t")
    assert grpc.headers() == {
        f"triton-grpc-protocol-{security.API_KEY_HEADER}": KEY,
        "authorization": "Bearer t",
    }


def test_entrypoint_starts_the_deep_check_over_http_only_when_asked() -> None:
    assert entrypoint.health_command({}) is None
    command = entrypoint.health_command({"DEEP_HEALTH_PORT": "8005"})
    assert command is not None and command[1:5] == ["-m", "serving.health", "--serve", "8005"]
    with pytest.raises(entrypoint.ConfigError, match="port number"):
        entrypoint.health_command({"DEEP_HEALTH_PORT": "80; rm"})


def test_entrypoint_puts_the_front_door_before_triton_when_asked() -> None:
    """Azure ML runs the image alone: HAProxy takes 8000/8001, Triton listens behind on loopback."""
    import re

    from serving.front_door import CONFIG, MAX_BODY_BYTES, FrontDoor

    env = {"TRITON_AUTH": "endpoint", "FRONT_DOOR": "1", "DEEP_HEALTH_PORT": "8005"}
    command = entrypoint.server_command(env)
    assert "--http-address=127.0.0.1" in command and "--http-port=8010" in command
    assert "--grpc-address=127.0.0.1" in command and "--grpc-port=8011" in command
    assert "--http-port=8000" not in command
    door = entrypoint.front_door(env)
    assert door is not None and door[0] == ["haproxy", "-db", "-f", entrypoint.FRONT_DOOR_CONFIG]
    assert set(re.findall(r"\$\{(\w+)\}", CONFIG.read_text())) <= set(door[1])
    assert (door[1]["TRITON_HTTP_PORT"], door[1]["FRONT_DOOR_HTTP_PORT"]) == ("8010", "8000")
    assert door[1]["MAX_BODY_BYTES"] == str(MAX_BODY_BYTES)
    assert door[1]["FRONT_DOOR_REQUEST_TIMEOUT"] == FrontDoor.request_timeout
    probe = entrypoint.health_command(env) or []
    assert "localhost:8010" in probe  # Triton behind the door, and the door's own check in front
    assert probe[probe.index("--front-door") + 1] == "localhost:8000"
    assert "--front-door" not in (entrypoint.health_command({"DEEP_HEALTH_PORT": "8005"}) or [])
    assert entrypoint.front_door({}) is None and "--http-port=8000" in entrypoint.server_command(
        {"TRITON_API_KEY": "k" * 32}
    )
