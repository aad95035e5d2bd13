"""Configuration sweeps with Triton Model Analyzer 1.44 (``.venv-ma``) against the local Triton.

    make perf-tune TUNE_MODEL=faq_classifier     # = python -m perf.tune faq_classifier

Model Analyzer's own reports are kept in ``perf/results/<date>/tune-<model>/`` (docs/perf.md)."""

from __future__ import annotations

import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
import yaml

from perf import OUT_DIR, RESULTS_DIR
from perf.run import tool_environment
from serving.paths import REPO_ROOT


def config(model: str, work: Path, max_concurrency: int, max_instances: int) -> dict:
    """The Model Analyzer profile config for ``model`` in a repository of its own under ``work``."""
    from export.build_repository import build
    from serving.triton import Ports, locate_triton

    build("cpu", work / "repository", only=[model], with_steps=True)
    triton, ports = locate_triton(), Ports.free()
    return {
        "model_repository": str(work / "repository"),
        "output_model_repository_path": str(work / "output"),
        "override_output_model_repository": True,
        "checkpoint_directory": str(work / "checkpoints"),
        "export_path": str(work / "export"),
        "triton_launch_mode": "local",
        "triton_server_path": str(triton.binary),
        "triton_http_endpoint": f"localhost:{ports.http}",
        "triton_grpc_endpoint": f"localhost:{ports.grpc}",
        "triton_metrics_url": f"http://localhost:{ports.metrics}/metrics",
        "triton_server_flags": {
            "backend-directory": str(triton.backends_dir),
            "backend-config": f"python,shm-region-prefix-name=tune_{ports.http}_",
        },
        "triton_server_environment": {
            "PYTHONPATH": f"{REPO_ROOT}:{triton.site_packages}",
            "OMP_NUM_THREADS": "1",
        },
        "perf_analyzer_path": str(REPO_ROOT / ".venv" / "bin" / "perf_analyzer"),
        "run_config_search_max_concurrency": max_concurrency,
        "run_config_search_max_instance_count": max_instances,
        "profile_models": {model: {"cpu_only": True}},
    }


def main(
    model: Annotated[str, typer.Argument(help="a model of the catalog (a step or an ONNX network)")],
    max_concurrency: Annotated[int, typer.Option(help="largest client concurrency tried")] = 16,
    max_instances: Annotated[int, typer.Option(help="largest instance count tried")] = 2,
) -> None:
    """Sweep ``model``'s configuration with Model Analyzer; keep its reports as the record."""
    work = OUT_DIR / "tune" / model
    shutil.rmtree(work, ignore_errors=True)
    (work / "export").mkdir(parents=True)
    (work / "profile.yaml").write_text(yaml.safe_dump(config(model, work, max_concurrency, max_instances)))
    analyzer = REPO_ROOT / ".venv-ma" / "bin" / "model-analyzer"
    if not analyzer.exists():
        raise typer.BadParameter("Model Analyzer is not installed: run `make perf-tune`")
    command = [str(analyzer), "profile", "-f", str(work / "profile.yaml")]
    if subprocess.run(command, env=tool_environment(), cwd=work, check=False).returncode != 0:
        raise typer.Exit(1)
    record = RESULTS_DIR / datetime.now(UTC).strftime("%Y-%m-%d") / f"tune-{model}"
    shutil.copytree(work / "export", record, dirs_exist_ok=True, ignore=shutil.ignore_patterns("plots"))
    shutil.copy2(work / "profile.yaml", record / "profile.yaml")
    typer.echo((record / "results" / "metrics-model-inference.csv").read_text())
    typer.echo(f"Model Analyzer's records: {record}")


if __name__ == "__main__":
    typer.run(main)
