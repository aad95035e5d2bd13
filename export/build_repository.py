"""Build a Triton model repository for a target from the model catalog.

Exports whatever ONNX artifact is missing (or all of them with ``--rebuild``), then renders
every model's ``config.pbtxt`` and version folder. The output folder is replaced model by
model, so a partial build never leaves a model with a stale config.
"""

from __future__ import annotations

import importlib
import logging
import shutil
from pathlib import Path
from typing import Annotated

import typer

from serving.catalog import all_models
from serving.modelspec import TARGETS, ModelSpec, Target
from serving.paths import ARTIFACTS_DIR, MODEL_REPOSITORY_DIR
from serving.render import validate, write_model
from serving.versions import HISTORY_FILE, restore

log = logging.getLogger(__name__)
app = typer.Typer(add_completion=False, help=__doc__)


def ensure_artifacts(
    specs: list[ModelSpec], artifacts_dir: Path, rebuild: bool = False, target: Target = "cpu"
) -> None:
    """Run each distinct exporter whose artifact is missing (once, even if several share it)."""
    done: set[str] = set()
    for spec in specs:
        exporter = spec.exporter_for(target)
        if exporter is None or exporter in done:
            continue
        if not rebuild and all((artifacts_dir / p).is_file() for p in spec.files_for(target)):
            continue
        module_name, func_name = exporter.split(":")
        log.info("exporting %s with %s", spec.name, exporter)
        getattr(importlib.import_module(module_name), func_name)(artifacts_dir)
        done.add(exporter)


def build(
    target: Target,
    repository: Path = MODEL_REPOSITORY_DIR,
    artifacts_dir: Path = ARTIFACTS_DIR,
    only: list[str] | None = None,
    rebuild: bool = False,
    with_steps: bool = False,
) -> list[Path]:
    """Export missing artifacts and render the repository; returns the model folders.

    ``only`` limits it to some models; ``with_steps`` adds the steps of the ensembles among them.
    """
    specs = all_models()
    validate(specs)
    if only and with_steps:
        by_name = {s.name: s for s in specs}
        only = list(
            dict.fromkeys(n for name in only for n in (name, *(st.model for st in by_name[name].steps)))
        )
    specs = [s for s in specs if target in s.targets and (not only or s.name in only)]
    ensure_artifacts(specs, artifacts_dir, rebuild, target)
    repository.mkdir(parents=True, exist_ok=True)
    written = [write_model(spec, target, repository, artifacts_dir) for spec in specs]
    for released in repository.glob(f"*/{HISTORY_FILE}"):  # released versions serve again
        restore(repository, released.parent.name)
    if not only:  # drop models that no longer exist in the catalog
        keep = {spec.name for spec in specs}
        for child in repository.iterdir():
            if child.is_dir() and (child / "config.pbtxt").exists() and child.name not in keep:
                shutil.rmtree(child)
    return written


@app.command()
def main(
    target: Annotated[
        str, typer.Option(help="cpu (local server), gpu (official container), gpu-local (local server, GPU)")
    ] = "cpu",
    repository: Annotated[Path, typer.Option(help="output folder")] = MODEL_REPOSITORY_DIR,
    model: Annotated[list[str] | None, typer.Option(help="only these models (repeatable)")] = None,
    rebuild: Annotated[bool, typer.Option(help="re-export every artifact")] = False,
) -> None:
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if target not in TARGETS:
        raise typer.BadParameter(f"target must be one of {', '.join(TARGETS)}")
    for path in build(target, repository, only=model, rebuild=rebuild):  # type: ignore[arg-type]
        typer.echo(f"wrote {path}")


if __name__ == "__main__":
    app()
