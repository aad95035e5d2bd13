"""Azure ML definitions for the scoring job, built with azure-ai-ml and written as YAML.

* `compute.yaml`: an AmlCompute cluster with `min_instances=0` (no cost while idle).
* `pipeline_job.yaml`: a pipeline with one parallel step (`parallel_run_function`) that runs
  `score.init()/run()` on `instance_count` nodes x `max_concurrency_per_instance` processes,
  `mini_batch_size` partition files per mini-batch, an `error_threshold` (failed partitions
  tolerated over the whole job), `mini_batch_error_threshold` and retry settings. Inputs and the
  output are uri_folders on Blob datastores, so predictions land in the same `preds` layout as a
  local run and reruns skip partitions that are already up to date.
* `schedule.yaml`: a JobSchedule with an hourly RecurrenceTrigger (as the original) or a cron
  expression.
* `retrain_job.yaml` and `retrain_schedule.yaml`: the nightly retraining as a command job
  (`batch_scoring.retrain_job`: snapshot the last days from PostgreSQL, train a version behind
  the gate), its secrets read from a Key Vault with the compute's managed identity.

`build()` only writes files (a dry run: nothing contacts Azure); `submit()` creates the compute,
the schedules (or a one-off scoring job) in a workspace with DefaultAzureCredential. Submission needs an
Azure subscription and is not exercised by the tests.
"""

from __future__ import annotations

import contextlib
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_OUT = PACKAGE_DIR / "aml" / "out"
ENTRY_SCRIPT = "entry.py"
# What the scoring step imports (sklearn/skl2onnx are only needed to train).
SCORING_PIP = [
    "numpy==1.26.4",
    "pandas==3.0.6",
    "pyarrow==25.0.1",
    "onnxruntime==1.31.1",
    "azure-storage-blob==12.31.1",
]
# Azure ML's parallel runtime needs these in the job's environment (not installed locally).
PRS_PIP = ["azureml-core==1.61.0", "azureml-dataset-runtime[fuse]==1.61.0"]
# What the retraining job imports: the training image's closure, and the Key Vault client.
TRAINING_PIP = [
    line
    for name in ("requirements-scoring.txt", "requirements-training.txt")
    for line in (PACKAGE_DIR / name).read_text().splitlines()
    if line and not line.startswith("#")
] + ["azure-identity==1.27.0", "azure-keyvault-secrets==4.12.0"]


@dataclass(frozen=True)
class AmlSettings:
    compute: str = "cpu-batch"
    vm_size: str = "Standard_D4s_v3"
    max_nodes: int = 4
    idle_seconds: int = 300
    instance_count: int = 2
    max_concurrency_per_instance: int = 4
    mini_batch_size: str = "20"  # partition files per mini-batch
    error_threshold: int = 10  # failed partitions tolerated over the whole job (-1: all)
    mini_batch_error_threshold: int = 5
    max_retries: int = 3
    timeout: int = 300  # seconds per run(mini_batch) invocation
    data_path: str = "azureml://datastores/sensordata/paths/"
    models_path: str = "azureml://datastores/sensormodels/paths/"
    preds_path: str = "azureml://datastores/sensorpreds/paths/"
    # A dated tag, not :latest: a scheduled job must not change its base under a running pipeline
    # (tags: Azure/AzureML-Containers, images/openmpi4.1.0-ubuntu22.04/release-notes.md).
    image: str = "mcr.microsoft.com/azureml/openmpi4.1.0-ubuntu22.04:20241202.v1"
    schedule_name: str = "batch-scoring-hourly"
    cron: str | None = None  # e.g. "0 * * * *"; None: RecurrenceTrigger(hour, 1)
    experiment: str = "batch-scoring"
    retrain_cron: str = "30 2 * * *"  # nightly, as k8s/batch/retrain.yaml
    retrain_schedule_name: str = "batch-retraining-nightly"
    retrain_days: float = 7.0
    retrain_timeout: int = 7200  # seconds
    # https://<name>.vault.azure.net/ holding the secrets retrain_job.SECRETS names; empty: the
    # job reads $KEY_VAULT_URL or fails at once saying so.
    key_vault_url: str = ""


def stage_code(out: Path) -> Path:
    """Copy the package sources into `out/code` with an entry script at its root.

    Azure ML uploads the `code` folder and imports the entry script from its root, so the
    package must sit beside it. Only Python sources travel (no node_modules, data or YAML).
    """
    code = out / "code"
    if code.exists():
        shutil.rmtree(code)
    pkg = code / "batch_scoring"
    pkg.mkdir(parents=True)
    for src in sorted(PACKAGE_DIR.glob("*.py")):
        shutil.copy2(src, pkg / src.name)
    (code / ENTRY_SCRIPT).write_text(
        '"""Azure ML parallel entry script: the same init()/run() the local runner calls."""\n\n'
        "from batch_scoring.score import init, run\n\n"
        '__all__ = ["init", "run"]\n'
    )
    return code


def conda_file(out: Path, name: str, pins: list[str]) -> Path:
    path = out / f"{name}.conda.yaml"
    pip = "".join(f"      - {p}\n" for p in pins)
    path.write_text(
        f"name: {name}\nchannels:\n  - conda-forge\ndependencies:\n  - python=3.11\n  - pip\n  - pip:\n{pip}"
    )
    return path


def build_objects(settings: AmlSettings, out: Path) -> dict:
    """The compute, pipeline job and schedule as azure-ai-ml entities."""
    # azure-ai-ml logs a warning per experimental schema class it touches; none is used here.
    logging.getLogger("azure.ai.ml._utils._experimental").setLevel(logging.ERROR)
    from azure.ai.ml import Input, Output
    from azure.ai.ml.dsl import pipeline
    from azure.ai.ml.entities import (
        AmlCompute,
        CommandJob,
        CommandJobLimits,
        CronTrigger,
        Environment,
        JobSchedule,
        RecurrenceTrigger,
        RetrySettings,
    )
    from azure.ai.ml.parallel import RunFunction, parallel_run_function

    code = stage_code(out)
    # Anonymous (inline) environment: registered with the job, versioned by its content.
    env = Environment(
        image=settings.image, conda_file=str(conda_file(out, "batch-scoring", SCORING_PIP + PRS_PIP))
    )
    compute = AmlCompute(
        name=settings.compute,
        size=settings.vm_size,
        min_instances=0,
        max_instances=settings.max_nodes,
        idle_time_before_scale_down=settings.idle_seconds,
        description="Batch anomaly scoring; scales to zero when idle.",
    )
    score_step = parallel_run_function(
        name="score_partitions",
        display_name="Score every (device, sensor) partition",
        description="init()/run(mini_batch) from batch_scoring.score over partition files",
        inputs={
            "data": Input(type="uri_folder", mode="ro_mount", description="<device>/<sensor>.parquet"),
            "models": Input(type="uri_folder", mode="ro_mount", description="ONNX models + manifest.json"),
        },
        outputs={
            "predictions": Output(type="uri_folder", mode="rw_mount"),
            "job_summary": Output(type="uri_file", mode="rw_mount"),
        },
        input_data="${{inputs.data}}",
        # New readings arrive under the same folder paths: a deterministic step would be reused
        # from the previous hour's run instead of scoring them.
        is_deterministic=False,
        instance_count=settings.instance_count,
        max_concurrency_per_instance=settings.max_concurrency_per_instance,
        mini_batch_size=settings.mini_batch_size,
        error_threshold=settings.error_threshold,
        mini_batch_error_threshold=settings.mini_batch_error_threshold,
        retry_settings=RetrySettings(max_retries=settings.max_retries, timeout=settings.timeout),
        logging_level="INFO",
        environment_variables={"OMP_NUM_THREADS": "1"},
        task=RunFunction(
            code=f"./{code.name}",  # relative to the YAML files, so the folder is portable
            entry_script=ENTRY_SCRIPT,
            program_arguments=(
                "--data_dir ${{inputs.data}} --models_dir ${{inputs.models}} "
                "--output_dir ${{outputs.predictions}}"
            ),
            environment=env,
            append_row_to="${{outputs.job_summary}}",
        ),
    )

    @pipeline(
        name="batch_scoring",
        description="Hourly anomaly scoring of every sensor series",
        default_compute=settings.compute,
    )
    def batch_scoring_pipeline(data, models):  # no annotations: dsl reads them as types
        step = score_step(data=data, models=models)
        step.outputs.predictions = Output(type="uri_folder", path=settings.preds_path, mode="rw_mount")
        return {"job_summary": step.outputs.job_summary}

    job = batch_scoring_pipeline(
        data=Input(type="uri_folder", path=settings.data_path),
        models=Input(type="uri_folder", path=settings.models_path),
    )
    job.experiment_name = settings.experiment
    if settings.cron:
        trigger = CronTrigger(expression=settings.cron, time_zone="UTC")
    else:
        trigger = RecurrenceTrigger(frequency="hour", interval=1, time_zone="UTC")
    schedule = JobSchedule(
        name=settings.schedule_name,
        trigger=trigger,
        create_job=job,
        description="Score new sensor readings every hour",
    )
    vault = f" --key-vault {settings.key_vault_url}" if settings.key_vault_url else ""
    retrain = CommandJob(
        display_name="Retrain every series' model behind the gate",
        description="snapshot the last days of intervals from PostgreSQL, then train a gated version",
        code=f"./{code.name}",
        command=f"python -m batch_scoring.retrain_job --days {settings.retrain_days:g}{vault}",
        environment=Environment(
            image=settings.image, conda_file=str(conda_file(out, "batch-training", TRAINING_PIP))
        ),
        compute=settings.compute,
        environment_variables={"OMP_NUM_THREADS": "1"},
        experiment_name=settings.experiment,
        limits=CommandJobLimits(timeout=settings.retrain_timeout),
    )
    retrain_schedule = JobSchedule(
        name=settings.retrain_schedule_name,
        trigger=CronTrigger(expression=settings.retrain_cron, time_zone="UTC"),
        create_job=retrain,
        description="Nightly retraining; the serving version changes only if the gate passes",
    )
    return {
        "compute": compute,
        "job": job,
        "schedule": schedule,
        "environment": env,
        "retrain_job": retrain,
        "retrain_schedule": retrain_schedule,
    }


def build(settings: AmlSettings | None = None, out: Path = DEFAULT_OUT) -> dict[str, Path]:
    """Dry run: write the compute, the scoring pipeline and the retraining job with their
    schedules (+ code/ and the conda files)."""
    settings = settings or AmlSettings()
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    names = ("compute", "pipeline_job", "schedule", "retrain_job", "retrain_schedule")
    paths = {name: out / f"{name}.yaml" for name in names}
    with contextlib.chdir(out):  # `code: ./code` resolves against the YAML folder
        objs = build_objects(settings, out)
        objs["compute"].dump(paths["compute"])
        for job in ("pipeline_job", "retrain_job"):
            objs["job" if job == "pipeline_job" else job].dump(paths[job])
            _relative_code(paths[job], out)
        _dump_schedule(objs["schedule"], paths["schedule"], paths["pipeline_job"])
        _dump_schedule(objs["retrain_schedule"], paths["retrain_schedule"], paths["retrain_job"])
    return paths


def _relative_code(path: Path, out: Path) -> None:
    """azure-ai-ml 1.35 dumps ``code:`` as an absolute path; make it ``./code`` again, so the
    folder loads wherever it is moved (a CI checkout, another machine)."""
    text = path.read_text()
    path.write_text(text.replace(f"code: {out / 'code'}", "code: ./code"))


def _dump_schedule(schedule, path: Path, job_path: Path) -> None:
    """Write the schedule with `create_job: ./pipeline_job.yaml`.

    azure-ai-ml 1.35 dumps an inline pipeline under `create_job` that its own `load_schedule`
    rejects (it expects `job:` there); a reference to the job file is the documented form and
    loads back to the same PipelineJob.
    """
    import yaml

    schedule.dump(path)
    data = yaml.safe_load(path.read_text())
    data["create_job"] = f"./{job_path.relative_to(path.parent).as_posix()}"
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def submit(
    subscription: str,
    resource_group: str,
    workspace: str,
    settings: AmlSettings | None = None,
    out: Path = DEFAULT_OUT,
    once: bool = False,
) -> str:  # pragma: no cover - needs Azure
    """Create the cluster and the schedule (or one job with `once`). Needs an Azure login."""
    from azure.ai.ml import MLClient
    from azure.identity import DefaultAzureCredential

    settings = settings or AmlSettings()
    out = Path(out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    with contextlib.chdir(out):
        objs = build_objects(settings, out)
    client = MLClient(DefaultAzureCredential(), subscription, resource_group, workspace)
    client.compute.begin_create_or_update(objs["compute"]).result()
    if once:
        return client.jobs.create_or_update(objs["job"], experiment_name=settings.experiment).name
    client.schedules.begin_create_or_update(objs["retrain_schedule"]).result()
    return client.schedules.begin_create_or_update(objs["schedule"]).result().name
