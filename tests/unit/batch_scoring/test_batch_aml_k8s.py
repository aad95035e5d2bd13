"""Azure ML YAML (dry run, loaded back with azure-ai-ml) and the Kubernetes CronJob (validated)."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from azure.ai.ml import load_compute, load_job
from azure.ai.ml.entities import AmlCompute, CronTrigger, PipelineJob, RecurrenceTrigger
from azure.ai.ml.entities._load_functions import load_schedule

from batch_scoring.aml_job import AmlSettings, build

REPO = Path(__file__).resolve().parents[3]
K8S_VERSION = "1.30.0"


@pytest.fixture(scope="module")
def aml_out(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return build(AmlSettings(), tmp_path_factory.mktemp("aml"))


def test_compute_scales_to_zero(aml_out: dict[str, Path]) -> None:
    compute = load_compute(aml_out["compute"])
    assert isinstance(compute, AmlCompute)
    assert (compute.name, compute.min_instances, compute.max_instances) == ("cpu-batch", 0, 4)


def test_pipeline_job_has_the_parallel_step(aml_out: dict[str, Path]) -> None:
    with contextlib.chdir(aml_out["pipeline_job"].parent):  # as `az ml job create` in the folder
        job = load_job(aml_out["pipeline_job"])
        assert job._validate().passed
    assert isinstance(job, PipelineJob)
    step = job.jobs["score_partitions"]
    assert step.type == "parallel"
    assert step.resources.instance_count == 2
    assert step.max_concurrency_per_instance == 4
    assert step.mini_batch_size == 20  # partition files per mini-batch
    assert step.error_threshold == 10 and step.mini_batch_error_threshold == 5
    assert (step.retry_settings.max_retries, step.retry_settings.timeout) == (3, 300)
    assert step.input_data == "${{inputs.data}}"
    raw = yaml.safe_load(aml_out["pipeline_job"].read_text())["jobs"]["score_partitions"]
    task = raw["task"]
    assert task["type"] == "run_function" and task["entry_script"] == "entry.py"
    assert "--models_dir ${{inputs.models}}" in task["program_arguments"]
    assert "--output_dir ${{outputs.predictions}}" in task["program_arguments"]
    assert raw["outputs"]["predictions"]["type"] == "uri_folder"
    assert raw["outputs"]["predictions"]["path"].startswith("azureml://datastores/")
    inputs = yaml.safe_load(aml_out["pipeline_job"].read_text())["inputs"]
    assert {k: v["type"] for k, v in inputs.items()} == {"data": "uri_folder", "models": "uri_folder"}
    assert job.settings.default_compute.endswith("cpu-batch")
    assert (aml_out["pipeline_job"].parent / task["code"] / "entry.py").is_file()


def test_the_job_folder_loads_after_a_move_never_reuses_a_run_and_pins_its_image(
    aml_out: dict[str, Path], tmp_path: Path
) -> None:
    moved = tmp_path / "moved"
    shutil.copytree(aml_out["pipeline_job"].parent, moved)
    shutil.rmtree(aml_out["pipeline_job"].parent / "code")  # the original place is gone
    try:
        raw = yaml.safe_load((moved / "pipeline_job.yaml").read_text())["jobs"]["score_partitions"]
        assert raw["task"]["code"] == "./code" and raw["component"]["is_deterministic"] is False
        image = raw["task"]["environment"]["image"]
        assert not image.endswith(":latest") and re.search(r":\d{8}\.v\d+$", image)
        with contextlib.chdir(moved):
            job = load_job(moved / "pipeline_job.yaml")
            assert job._validate().passed
        assert (moved / job.jobs["score_partitions"].component.task["code"] / "entry.py").is_file()
        assert load_schedule(moved / "schedule.yaml").create_job is not None
        retrain = yaml.safe_load((moved / "retrain_job.yaml").read_text())
        assert retrain["code"] == "./code" and retrain["environment"]["image"] == image
        with contextlib.chdir(moved):
            assert load_job(moved / "retrain_job.yaml")._validate().passed
        assert load_schedule(moved / "retrain_schedule.yaml").create_job.type == "command"
    finally:
        shutil.copytree(moved / "code", aml_out["pipeline_job"].parent / "code")


def test_schedule_is_hourly_by_default(aml_out: dict[str, Path]) -> None:
    schedule = load_schedule(aml_out["schedule"])
    assert isinstance(schedule.trigger, RecurrenceTrigger)
    assert (schedule.trigger.frequency, schedule.trigger.interval) == ("hour", 1)
    assert isinstance(schedule.create_job, PipelineJob)
    assert "score_partitions" in schedule.create_job.jobs


def test_retraining_is_a_nightly_command_job_with_the_training_closure(aml_out: dict[str, Path]) -> None:
    with contextlib.chdir(aml_out["retrain_job"].parent):
        job = load_job(aml_out["retrain_job"])
    assert job.type == "command"
    assert job.command == "python -m batch_scoring.retrain_job --days 7" and job.limits.timeout == 7200
    assert (aml_out["retrain_job"].parent / "code" / "batch_scoring" / "retrain_job.py").is_file()
    pins = job.environment.conda_file["dependencies"][-1]["pip"]
    assert {"azure-keyvault-secrets==4.12.0", "scikit-learn==1.9.1", "psycopg==3.3.2"} <= set(pins)
    schedule = load_schedule(aml_out["retrain_schedule"])
    assert isinstance(schedule.trigger, CronTrigger) and schedule.trigger.expression == "30 2 * * *"
    assert schedule.create_job.command == job.command


def test_cron_schedule(tmp_path: Path) -> None:
    vault = "https://sensors.vault.azure.net/"
    paths = build(AmlSettings(cron="15 * * * *", error_threshold=-1, key_vault_url=vault), tmp_path)
    assert load_job(paths["retrain_job"]).command.endswith(f"--key-vault {vault}")
    schedule = load_schedule(paths["schedule"])
    assert isinstance(schedule.trigger, CronTrigger) and schedule.trigger.expression == "15 * * * *"
    assert load_job(paths["pipeline_job"]).jobs["score_partitions"].error_threshold == -1


def test_staged_code_runs_like_the_parallel_runtime(
    aml_out: dict[str, Path], store_root: Path, tmp_path: Path
) -> None:
    """Import entry.py from the staged code folder alone and drive it as Azure ML would:
    init() with the mounted folders, run() on mini-batches of file paths (every file of the
    uri_folder, manifest included)."""
    code = aml_out["pipeline_job"].parent / "code"
    out = tmp_path / "preds"
    script = textwrap.dedent(f"""
        import json, sys
        sys.path.insert(0, {str(code)!r})
        import entry, batch_scoring
        assert batch_scoring.__file__.startswith({str(code)!r}), batch_scoring.__file__
        from pathlib import Path
        data = Path({str(store_root / "data")!r})
        files = sorted(str(p) for p in data.rglob("*") if p.is_file())
        entry.init(["--data_dir", str(data), "--models_dir", {str(store_root / "models")!r},
                    "--output_dir", {str(out)!r}, "--logging_level", "INFO"])
        rows = []
        for i in range(0, len(files), 4):
            rows += entry.run(files[i:i + 4]).to_dict("records")
        print(json.dumps([(r["partition"], r["status"]) for r in rows]))
    """)
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    rows = json.loads(res.stdout.strip().splitlines()[-1])
    statuses = dict(rows)
    assert sum(s == "scored" for s in statuses.values()) == 6
    assert [k for k, s in statuses.items() if s == "ignored"] == [str(store_root / "data" / "manifest.json")]
    assert len(list(out.rglob("*.parquet"))) == 6


def _k8s_docs() -> list[dict]:
    kubectl = str(REPO / ".venv" / "bin" / "kubectl")
    rendered = subprocess.run(
        [kubectl, "kustomize", str(REPO / "k8s" / "batch")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    return [d for d in yaml.safe_load_all(rendered) if d]


def test_k8s_cronjob_validates_against_kubernetes_1_30() -> None:
    docs = _k8s_docs()
    assert {d["kind"] for d in docs} == {"Namespace", "ServiceAccount", "CronJob", "Deployment"}
    for doc in docs:
        kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
    for name in ("cronjob", "ingest", "score-window", "retrain"):
        raw = yaml.safe_load((REPO / "k8s" / "batch" / f"{name}.yaml").read_text())
        kubernetes_validate.validate(raw, K8S_VERSION, strict=True)


def test_k8s_stream_jobs_run_commands_the_cli_accepts() -> None:
    """The ingester, the sharded hourly scoring and the nightly retraining: each container's
    command and arguments are the CLI's own, the shard comes from the Indexed Job's index."""
    from typer.testing import CliRunner

    from batch_scoring.cli import app

    docs = {d["metadata"]["name"]: d for d in _k8s_docs() if d["kind"] in ("CronJob", "Deployment")}
    window = docs["score-window"]["spec"]["jobTemplate"]["spec"]
    assert window["completionMode"] == "Indexed" and (window["completions"], window["parallelism"]) == (4, 2)
    (scorer,) = window["template"]["spec"]["containers"]
    assert "--shard=$(JOB_COMPLETION_INDEX)/4" in scorer["args"]
    index = {e["name"]: e for e in scorer["env"]}["JOB_COMPLETION_INDEX"]["valueFrom"]["fieldRef"]
    assert index["fieldPath"] == "metadata.annotations['batch.kubernetes.io/job-completion-index']"
    retrain = docs["retrain"]["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    pods = [docs["ingest"]["spec"]["template"]["spec"], window["template"]["spec"], retrain]
    containers = [c for pod in pods for c in [*pod.get("initContainers", []), *pod["containers"]]]
    assert [c["command"][3] for c in containers] == ["ingest", "score-window", "snapshot", "train"]
    for container in containers:
        usage = CliRunner().invoke(app, [container["command"][3], "--help"], env={"COLUMNS": "200"}).output
        for arg in container["args"]:
            assert arg.split("=")[0] in usage, (container["name"], arg)


def test_k8s_cronjob_runs_the_same_job() -> None:
    cron = next(d for d in _k8s_docs() if d["kind"] == "CronJob" and d["metadata"]["name"] == "batch-scoring")
    spec = cron["spec"]
    assert spec["schedule"] == "0 * * * *" and spec["concurrencyPolicy"] == "Forbid"
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["python", "-m", "batch_scoring", "score"]
    assert "--store=blob" in container["args"]
    assert container["image"].startswith("myregistry.azurecr.io/batch-scoring:")
    env = {e["name"]: e for e in container["env"]}
    secret = env["AZURE_STORAGE_CONNECTION_STRING"]["valueFrom"]["secretKeyRef"]
    assert secret == {"name": "batch-scoring-storage", "key": "connection-string"}
    assert pod["securityContext"]["runAsNonRoot"] is True
    # The CLI accepts exactly these arguments.
    from typer.testing import CliRunner

    from batch_scoring.cli import app

    res = CliRunner().invoke(app, ["score", "--help"])
    for arg in container["args"]:
        assert arg.split("=")[0] in res.output


def test_image_requirements_match_the_lock() -> None:
    lock = dict(
        line.split("==")
        for line in (REPO / "requirements" / "serving.lock").read_text().split()
        if "==" in line
    )
    lock = {k.lower().replace("_", "-"): v for k, v in lock.items()}
    req = (REPO / "batch_scoring" / "requirements-scoring.txt").read_text().splitlines()
    pins = dict(line.split("==") for line in req if line and not line.startswith("#"))
    assert {"numpy", "pandas", "pyarrow", "onnxruntime", "azure-storage-blob", "typer", "tqdm"} <= set(pins)
    for name, version in pins.items():
        assert lock.get(name.lower().replace("_", "-")) == version, name
