"""Azure ML YAML written by the dry run loads back with azure-ai-ml's own validation."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml
from azure.ai.ml import load_model, load_online_deployment, load_online_endpoint
from azure.ai.ml.entities import (
    KubernetesOnlineDeployment,
    KubernetesOnlineEndpoint,
    ManagedOnlineDeployment,
    ManagedOnlineEndpoint,
)
from marshmallow.exceptions import ValidationError as MarshmallowError

from deploy import aml

IMAGE = "example.azurecr.io/triton-scoring-stack:1.2.3"


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("aml")
    settings = aml.AmlSettings(
        image=IMAGE,
        repository=root / "repos" / "model_repository_gpu",
        native_repository=root / "repos" / "model_repository_native",
    )
    folder = root / "yaml"
    written = aml.dry_run(settings, folder)
    assert sorted(p.name for p in written) == sorted(aml.SCHEMA_URLS)
    return folder


def test_endpoints_use_key_auth(out: Path) -> None:
    managed = load_online_endpoint(out / "endpoint-managed.yml")
    assert isinstance(managed, ManagedOnlineEndpoint) and managed.auth_mode == "key"
    k8s = load_online_endpoint(out / "endpoint-kubernetes.yml")
    assert isinstance(k8s, KubernetesOnlineEndpoint)
    assert k8s.auth_mode == "key" and k8s.compute == "aks-gpu"


@pytest.mark.parametrize(
    ("file", "cls", "instance_type"),
    [
        ("deployment-managed-custom.yml", ManagedOnlineDeployment, "Standard_NC4as_T4_v3"),
        ("deployment-kubernetes-custom.yml", KubernetesOnlineDeployment, "gpuinstance"),
    ],
)
def test_custom_container_deployments(out: Path, file: str, cls: type, instance_type: str) -> None:
    deployment = load_online_deployment(out / file)
    assert isinstance(deployment, cls)
    assert deployment.instance_type == instance_type
    env = deployment.environment
    assert env.image == IMAGE
    routes = env.inference_config  # the SDK's REST model after loading
    for route, port, path in (
        ("liveness_route", 8005, "/live"),  # the deep check: serving.health --serve
        ("readiness_route", 8005, "/ready"),
        ("scoring_route", 8000, "/"),
    ):
        assert (getattr(routes, route).port, getattr(routes, route).path) == (port, path)
    # the repository is the model, found by the entrypoint under $AZUREML_MODEL_DIR
    assert deployment.model.type == "custom_model"
    assert Path(deployment.model.path) == out.parent / "repos" / "model_repository_gpu"
    assert deployment.environment_variables == {
        "MODEL_REPOSITORY": "${AZUREML_MODEL_DIR}/model_repository_gpu",
        "TRITON_AUTH": "endpoint",
        "DEEP_HEALTH_PORT": "8005",
        "FRONT_DOOR": "1",
    }
    assert deployment.readiness_probe.failure_threshold * deployment.readiness_probe.period >= 900


def test_a_new_model_version_rolls_out_blue_green(out: Path) -> None:
    """The repository is a versioned model; the rollout deployment serves the next version by
    reference beside the serving one, with the same container, probes and settings, and the
    endpoint splits its traffic between the two."""
    model = load_model(out / "model-repository.yml")
    assert model.name == aml.REPOSITORY_MODEL and model.version == "1"
    blue = load_online_deployment(out / "deployment-managed-custom.yml")
    green = load_online_deployment(out / "deployment-managed-rollout.yml")
    assert green.name == "triton-v2" and green.model.removeprefix("azureml:") == f"{aml.REPOSITORY_MODEL}:2"
    assert green.environment.image == blue.environment.image == IMAGE
    assert green.environment_variables == blue.environment_variables
    assert green.readiness_probe.failure_threshold == blue.readiness_probe.failure_threshold
    endpoint = load_online_endpoint(out / "endpoint-managed-traffic.yml")
    assert endpoint.name == "triton-scoring" and endpoint.auth_mode == "key"
    assert endpoint.traffic == {aml.BLUE: 90, "triton-v2": 10}


def test_yaml_paths_are_relative_to_the_yaml(out: Path) -> None:
    data = yaml.safe_load((out / "deployment-managed-custom.yml").read_text())
    assert not os.path.isabs(data["model"]["path"])
    assert data["$schema"].endswith("managedOnlineDeployment.schema.json")


def test_no_code_triton_model(out: Path) -> None:
    model = load_model(out / "model-triton-native.yml")
    assert model.type == "triton_model"
    deployment = load_online_deployment(out / "deployment-managed-nocode.yml")
    assert deployment.model.type == "triton_model"
    assert deployment.environment is None and deployment.code_configuration is None
    assert load_model(out / "model-repository.yml").type == "custom_model"


def test_loading_validates(out: Path, tmp_path: Path) -> None:
    """load_* is a real check: a wrong auth mode is refused."""
    data = yaml.safe_load((out / "endpoint-managed.yml").read_text())
    data["auth_mode"] = "password"
    bad = tmp_path / "endpoint.yml"
    bad.write_text(yaml.safe_dump(data))
    with pytest.raises((MarshmallowError, ValueError), match=r"auth_mode|password"):
        load_online_endpoint(bad)


def _model(root: Path, name: str, body: str) -> None:
    (root / name / "1").mkdir(parents=True)
    (root / name / "config.pbtxt").write_text(f'name: "{name}"\n{body}')


def test_native_subset_keeps_only_what_azure_ml_triton_can_load(tmp_path: Path) -> None:
    source = tmp_path / "gpu"
    _model(source, "classifier", 'backend: "onnxruntime"\n')
    _model(source, "pre", 'backend: "python"\n')
    step = 'ensemble_scheduling { step { model_name: "%s" model_version: -1 } }\n'
    _model(source, "native_ens", 'platform: "ensemble"\n' + step % "classifier")
    _model(
        source,
        "mixed_ens",
        'platform: "ensemble"\n'
        + (step % "pre").replace("}\n", "")
        + ' step { model_name: "classifier" model_version: -1 } }\n',
    )
    kept = aml.native_subset(source, tmp_path / "native")
    assert kept == ["classifier", "native_ens"]
    assert sorted(p.name for p in (tmp_path / "native").iterdir()) == kept
