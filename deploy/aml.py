"""Azure ML online deployment of the Triton repository, written as YAML by a dry run.

Nothing here talks to Azure: the entities are built with ``azure-ai-ml``, dumped to YAML
(``az ml online-endpoint create -f ...`` takes them as they are, see deploy/aml_deploy.sh)
and loaded back by the tests with ``load_online_endpoint``/``load_online_deployment``/
``load_model``, which run the SDK's own schema validation offline.

Two ways to serve:

* **custom container** (``triton-custom``): the project image (deploy/Dockerfile) with the
  GPU repository registered as the model and mounted at ``$AZUREML_MODEL_DIR``; liveness,
  readiness and scoring routes on Triton's HTTP port 8000. The same deployment is written
  for managed compute and for an AKS cluster attached to the workspace (Kubernetes compute).
  The endpoint enforces its key (``auth_mode: key``), so the entrypoint runs with
  ``TRITON_AUTH=endpoint``; the repository/admin APIs stay locked by a random admin key.
* **no-code** (``triton-nocode``): a model of type ``triton_model`` that Azure ML serves with
  its own Triton image. That image has none of the project's packages, so it can only serve
  models with native backends (ONNX/TensorRT): ``native-repository`` copies that subset.

A new model version rolls out blue/green: the repository is registered again as the next version
of the same model (``model-repository.yml`` carries ``--model-version``), a second deployment
(``deployment-managed-rollout.yml``, ``triton-v<N>``) serves it beside ``triton-custom``, and
``endpoint-managed-traffic.yml`` splits the endpoint's traffic between them
(``--rollout-percent``); ``deploy/aml_deploy.sh rollout|shift|rollback`` applies them.

    python -m deploy.aml dry-run --out build/aml
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from azure.ai.ml.constants import AssetTypes
from azure.ai.ml.entities import (
    Environment,
    KubernetesOnlineDeployment,
    KubernetesOnlineEndpoint,
    ManagedOnlineDeployment,
    ManagedOnlineEndpoint,
    Model,
    OnlineRequestSettings,
    ProbeSettings,
)
from google.protobuf import text_format
from tritonclient.grpc import model_config_pb2 as mc

from serving.paths import BUILD_DIR, REPO_ROOT

HTTP_PORT = 8000
# Liveness and readiness are the deep check (serving.health --serve, started by the entrypoint):
# Triton's /v2/health/* stay green while a dead Python stub fails every request of its ensemble.
DEEP_HEALTH_PORT = 8005
LIVENESS_PATH = "/live"
READINESS_PATH = "/ready"
SCORING_PATH = "/"  # the endpoint forwards /v2/... paths to Triton as they are
NATIVE_BACKENDS = frozenset({"onnxruntime", "tensorrt"})
_SCHEMAS = "https://azuremlschemas.azureedge.net/latest/"
SCHEMA_URLS = {
    "endpoint-managed.yml": _SCHEMAS + "managedOnlineEndpoint.schema.json",
    "endpoint-kubernetes.yml": _SCHEMAS + "kubernetesOnlineEndpoint.schema.json",
    "model-repository.yml": _SCHEMAS + "model.schema.json",
    "model-triton-native.yml": _SCHEMAS + "model.schema.json",
    "deployment-managed-custom.yml": _SCHEMAS + "managedOnlineDeployment.schema.json",
    "deployment-kubernetes-custom.yml": _SCHEMAS + "kubernetesOnlineDeployment.schema.json",
    "deployment-managed-nocode.yml": _SCHEMAS + "managedOnlineDeployment.schema.json",
    "deployment-managed-rollout.yml": _SCHEMAS + "managedOnlineDeployment.schema.json",
    "endpoint-managed-traffic.yml": _SCHEMAS + "managedOnlineEndpoint.schema.json",
}
BLUE = "triton-custom"  # the deployment that serves first; each rollout adds triton-v<N> beside it

app = typer.Typer(add_completion=False, help=__doc__)


@dataclass(frozen=True)
class AmlSettings:
    """Names and sizes; every one is a CLI option of ``dry-run``."""

    endpoint: str = "triton-scoring"
    k8s_endpoint: str = "triton-scoring-aks"
    image: str = "myregistry.azurecr.io/triton-scoring-stack:0.1.0"
    repository: Path = BUILD_DIR / "model_repository_gpu"
    native_repository: Path = BUILD_DIR / "model_repository_native"
    instance_type: str = "Standard_NC4as_T4_v3"
    instance_count: int = 1
    k8s_compute: str = "aks-gpu"
    k8s_instance_type: str = "gpuinstance"
    model_version: str = "1"  # of the registered repository that triton-custom serves
    rollout_version: str = "2"  # the repository version a rollout deploys beside it
    rollout_percent: int = 10  # of the endpoint's traffic sent to the new version at first
    serving_deployment: str = BLUE  # the deployment a rollout shares the traffic with


def inference_config() -> dict[str, dict[str, object]]:
    """Routes Azure ML uses for the custom container: all on Triton's HTTP port."""
    return {
        "liveness_route": {"port": DEEP_HEALTH_PORT, "path": LIVENESS_PATH},
        "readiness_route": {"port": DEEP_HEALTH_PORT, "path": READINESS_PATH},
        "scoring_route": {"port": HTTP_PORT, "path": SCORING_PATH},
    }


def environment(settings: AmlSettings) -> Environment:
    return Environment(
        name="triton-scoring-stack",
        image=settings.image,
        description="Triton 24.10 with the project's Python-backend models (deploy/Dockerfile)",
        inference_config=inference_config(),
    )


REPOSITORY_MODEL = "triton-scoring-repository"


def repository_model(path: str, version: str = "1") -> Model:
    """The GPU repository as a folder model, mounted at $AZUREML_MODEL_DIR/<folder name>."""
    return Model(
        name=REPOSITORY_MODEL,
        version=version,
        path=path,
        type=AssetTypes.CUSTOM_MODEL,
        description="Triton model repository rendered by `make build-gpu`",
    )


def container_env(repository_folder: str) -> dict[str, str]:
    return {
        "MODEL_REPOSITORY": f"${{AZUREML_MODEL_DIR}}/{repository_folder}",
        "TRITON_AUTH": "endpoint",
        "DEEP_HEALTH_PORT": str(DEEP_HEALTH_PORT),
        "FRONT_DOOR": "1",  # HAProxy on 8000, refusing what Triton 2.51 cannot survive
    }


def _probes() -> tuple[ProbeSettings, ProbeSettings]:
    # TensorRT engine builds at load take minutes: give readiness 15 minutes in all
    liveness = ProbeSettings(initial_delay=600, period=10, timeout=5, failure_threshold=30)
    readiness = ProbeSettings(initial_delay=10, period=10, timeout=5, failure_threshold=90)
    return liveness, readiness


def build_entities(settings: AmlSettings) -> dict[str, Any]:
    """Every entity, keyed by the YAML file name it is written to."""
    repo_rel = str(Path(settings.repository).resolve())
    native_rel = str(Path(settings.native_repository).resolve())
    folder = Path(settings.repository).name
    liveness, readiness = _probes()
    requests = OnlineRequestSettings(request_timeout_ms=60000, max_concurrent_requests_per_instance=16)
    managed_endpoint = ManagedOnlineEndpoint(
        name=settings.endpoint, auth_mode="key", description="Triton FAQ and image ensembles"
    )
    k8s_endpoint = KubernetesOnlineEndpoint(
        name=settings.k8s_endpoint,
        compute=settings.k8s_compute,
        auth_mode="key",
        description="Triton on the AKS cluster attached to the workspace",
    )
    # the same Triton container on both computes; only the endpoint and instance type differ
    custom: dict[str, Any] = {
        "name": BLUE,
        "model": repository_model(repo_rel, settings.model_version),
        "environment": environment(settings),
        "environment_variables": container_env(folder),
        "instance_count": settings.instance_count,
        "liveness_probe": liveness,
        "readiness_probe": readiness,
        "request_settings": requests,
    }
    managed_custom = ManagedOnlineDeployment(
        endpoint_name=settings.endpoint, instance_type=settings.instance_type, **custom
    )
    k8s_custom = KubernetesOnlineDeployment(
        endpoint_name=settings.k8s_endpoint, instance_type=settings.k8s_instance_type, **custom
    )
    nocode_model = Model(
        name="triton-scoring-native",
        path=native_rel,
        type=AssetTypes.TRITON_MODEL,
        description="Natively served models only (ONNX/TensorRT): no Python backend",
    )
    managed_nocode = ManagedOnlineDeployment(
        name="triton-nocode",
        endpoint_name=settings.endpoint,
        model=nocode_model,
        instance_type=settings.instance_type,
        instance_count=settings.instance_count,
    )
    green = f"triton-v{settings.rollout_version}"
    rollout = ManagedOnlineDeployment(  # the registered version by reference: nothing uploaded again
        **{**custom, "name": green, "model": f"azureml:{REPOSITORY_MODEL}:{settings.rollout_version}"},
        endpoint_name=settings.endpoint,
        instance_type=settings.instance_type,
    )
    split = {settings.serving_deployment: 100 - settings.rollout_percent, green: settings.rollout_percent}
    traffic = ManagedOnlineEndpoint(
        name=settings.endpoint, auth_mode="key", description=managed_endpoint.description, traffic=split
    )
    return {
        "endpoint-managed.yml": managed_endpoint,
        "endpoint-kubernetes.yml": k8s_endpoint,
        "model-repository.yml": repository_model(repo_rel, settings.model_version),
        "model-triton-native.yml": nocode_model,
        "deployment-managed-custom.yml": managed_custom,
        "deployment-kubernetes-custom.yml": k8s_custom,
        "deployment-managed-nocode.yml": managed_nocode,
        "deployment-managed-rollout.yml": rollout,
        "endpoint-managed-traffic.yml": traffic,
    }


def to_yaml_dict(entity: Any, out: Path, schema_url: str | None = None) -> dict[str, Any]:
    """The entity as ``az ml`` YAML: plain dicts, local paths relative to ``out`` (the YAML's folder).

    The SDK's ``dump`` resolves local paths to absolute ones (and, for endpoints, writes no
    file at all), which would tie the YAML to this checkout.
    """
    data: dict[str, Any] = json.loads(json.dumps(entity._to_dict()))
    for holder in (data, data.get("model")):
        if isinstance(holder, dict) and isinstance(holder.get("path"), str) and os.path.isabs(holder["path"]):
            holder["path"] = os.path.relpath(holder["path"], out)
    return {"$schema": schema_url, **data} if schema_url else data


def dry_run(settings: AmlSettings, out: Path) -> list[Path]:
    """Write every entity as YAML under ``out``; returns the files."""
    out = out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, entity in build_entities(settings).items():
        path = out / name
        path.write_text(yaml.safe_dump(to_yaml_dict(entity, out, SCHEMA_URLS.get(name)), sort_keys=False))
        written.append(path)
    return written


def native_subset(source: Path, dest: Path) -> list[str]:
    """Copy the models Azure ML's own Triton can serve (native backends, and ensembles of them)."""
    configs = {}
    for config_path in sorted(source.glob("*/config.pbtxt")):
        configs[config_path.parent.name] = text_format.Parse(config_path.read_text(), mc.ModelConfig())
    keep = {
        name
        for name, c in configs.items()
        if c.backend in NATIVE_BACKENDS or c.platform in {"onnxruntime_onnx", "tensorrt_plan"}
    }
    changed = True
    while changed:  # ensembles whose steps are all kept
        changed = False
        for name, config in configs.items():
            steps = [s.model_name for s in config.ensemble_scheduling.step]
            if config.platform == "ensemble" and name not in keep and steps and set(steps) <= keep:
                keep.add(name)
                changed = True
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for name in sorted(keep):
        shutil.copytree(source / name, dest / name)
    return sorted(keep)


@app.callback()
def _main() -> None:
    """Azure ML YAML for the Triton deployments (offline)."""


@app.command("dry-run")
def dry_run_command(
    out: Annotated[Path, typer.Option(help="folder for the YAML files")] = BUILD_DIR / "aml",
    endpoint: Annotated[str, typer.Option(help="managed endpoint (unique per region)")] = "triton-scoring",
    k8s_endpoint: Annotated[str, typer.Option(help="Kubernetes endpoint name")] = "triton-scoring-aks",
    image: Annotated[str, typer.Option(help="image in your registry")] = AmlSettings.image,
    repository: Annotated[Path, typer.Option(help="GPU repository")] = AmlSettings.repository,
    native_repository: Annotated[Path, typer.Option(help="no-code subset")] = AmlSettings.native_repository,
    instance_type: Annotated[str, typer.Option(help="managed GPU SKU")] = AmlSettings.instance_type,
    k8s_compute: Annotated[str, typer.Option(help="attached AKS compute name")] = AmlSettings.k8s_compute,
    k8s_instance_type: Annotated[str, typer.Option(help="InstanceType on the AKS compute")] = "gpuinstance",
    model_version: Annotated[str, typer.Option(help="registered repository version serving now")] = "1",
    rollout_version: Annotated[str, typer.Option(help="repository version to roll out")] = "2",
    rollout_percent: Annotated[
        int, typer.Option(help="traffic share of the new version", min=0, max=100)
    ] = 10,
    serving_deployment: Annotated[str, typer.Option(help="deployment serving now")] = BLUE,
) -> None:
    """Write the endpoint, model and deployment YAML (no Azure call)."""
    settings = AmlSettings(
        endpoint=endpoint,
        k8s_endpoint=k8s_endpoint,
        image=image,
        repository=repository.resolve(),
        native_repository=native_repository.resolve(),
        instance_type=instance_type,
        k8s_compute=k8s_compute,
        k8s_instance_type=k8s_instance_type,
        model_version=model_version,
        rollout_version=rollout_version,
        rollout_percent=rollout_percent,
        serving_deployment=serving_deployment,
    )
    for path in dry_run(settings, out.resolve()):
        typer.echo(f"wrote {path.relative_to(REPO_ROOT) if path.is_relative_to(REPO_ROOT) else path}")


@app.command("native-repository")
def native_repository_command(
    source: Annotated[Path, typer.Option(help="GPU repository")] = AmlSettings.repository,
    dest: Annotated[Path, typer.Option(help="output")] = AmlSettings.native_repository,
) -> None:
    """Copy the natively served models of the GPU repository for the no-code deployment."""
    kept = native_subset(source, dest)
    typer.echo(f"{dest}: {', '.join(kept) or 'no native models'}")


if __name__ == "__main__":
    app()
