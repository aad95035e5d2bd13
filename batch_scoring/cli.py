"""`python -m batch_scoring generate|train|models|tune|quality|score|demo|aml|azurite`, and the
streaming commands `services|produce|ingest|score-window|snapshot` (batch_scoring.cli_stream).

`--store` picks the storage: `local:PATH` (default `local:build/batch`, a plain folder),
`azurite[:PORT]` (the emulator; started for the duration of the command when none answers on
the port, with its files under batch_scoring/azurite/data) or `blob` (a real account through
`--connection-string` or $AZURE_STORAGE_CONNECTION_STRING).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import typer

from batch_scoring.storage import StoreSpec

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
aml_app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Azure ML: write the job/schedule/compute YAML, or submit them.",
)
app.add_typer(aml_app, name="aml")

DEFAULT_STORE = "local:build/batch"
StoreOpt = typer.Option(DEFAULT_STORE, "--store", "-s", help="local:PATH | azurite[:PORT] | blob")
ConnOpt = typer.Option(
    None,
    "--connection-string",
    envvar="AZURE_STORAGE_CONNECTION_STRING",
    show_envvar=True,
    help="for --store blob",
)
PrefixOpt = typer.Option("", "--prefix", help="prefix for the container names (isolates runs)")
WorkersOpt = typer.Option(2, "--workers", "-w", help="worker processes")


@contextlib.contextmanager
def open_spec(store: str, connection_string: str | None, prefix: str) -> Iterator[StoreSpec]:
    """Parse --store; for `azurite`, start the emulator if nothing answers on its port.

    Errors a user can fix (bad store, no data, no manifest) end the command with exit code 2 and
    one line instead of a traceback.
    """
    try:
        spec = StoreSpec.parse(store, connection_string, prefix)
        if spec.path.startswith("azurite:"):
            from batch_scoring.azurite import ensure_azurite

            with ensure_azurite(int(spec.path.split(":")[1])) as started:
                if started is not None:
                    typer.echo(
                        f"started Azurite on port {started.port} (data in {started.location})", err=True
                    )
                yield spec
        else:
            yield spec
    except (ValueError, FileNotFoundError, RuntimeError, TimeoutError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


@app.command()
def generate(
    store: str = StoreOpt,
    connection_string: str | None = ConnOpt,
    prefix: str = PrefixOpt,
    devices: int = typer.Option(3, help="devices (original: 3)"),
    sensors: int = typer.Option(5, help="sensors per device (original: 5)"),
    readings: int = typer.Option(1440, help="readings per series (one a minute)"),
    seed: int = typer.Option(7),
    fmt: str = typer.Option("parquet", "--format", help="parquet | csv | both"),
    combined_csv: bool = typer.Option(False, help="also write the original's single sensor_data.csv"),
    workers: int = WorkersOpt,
    progress: bool = typer.Option(True),
) -> None:
    """Write synthetic series with labelled spikes, drifts and stuck values to the `data` container."""
    from batch_scoring.generate import GenSpec
    from batch_scoring.generate import generate as run_generate

    formats = {"parquet": ("parquet",), "csv": ("csv",), "both": ("parquet", "csv")}[fmt]
    with open_spec(store, connection_string, prefix) as spec:
        gen = GenSpec(devices=devices, sensors=sensors, readings=readings, seed=seed)
        manifest = run_generate(
            spec, gen, formats=formats, combined_csv=combined_csv, workers=workers, progress=progress
        )
    typer.echo(f"generated {manifest['series']} series, {manifest['rows']:,} rows -> {spec.describe()}")


def _config(
    preset: str, features: str | None, gamma: str | None, nu: float | None, train_fraction: float | None
):
    from dataclasses import replace

    from batch_scoring.model import PRESETS

    config = PRESETS[preset]
    changes: dict = {}
    if features:
        changes["features"] = features
    if gamma:
        changes["gamma"] = gamma if gamma in ("scale", "auto") else float(gamma)
    if nu is not None:
        changes["nu"] = nu
    if train_fraction is not None:
        changes["train_fraction"] = train_fraction
    return replace(config, **changes)


@app.command()
def train(
    store: str = StoreOpt,
    connection_string: str | None = ConnOpt,
    prefix: str = PrefixOpt,
    preset: str = typer.Option("default", help="default | original (rbf, gamma=0.01, nu=0.0001, value only)"),
    features: str | None = typer.Option(None, help="value | context"),
    gamma: str | None = typer.Option(None, help="number, scale or auto"),
    nu: float | None = typer.Option(None),
    train_fraction: float | None = typer.Option(None, help="leading share of each series used to train"),
    tolerance: float = typer.Option(0.02, help="F1 the new version may lose against the serving one"),
    workers: int = WorkersOpt,
    progress: bool = typer.Option(True),
) -> None:
    """Train a new model version (one StandardScaler+OneClassSVM per series, ONNX) and serve it
    if it passes the gate; exit 1 if a series failed or the gate refused it."""
    from batch_scoring.train import train_all

    config = _config(preset, features, gamma, nu, train_fraction)
    with open_spec(store, connection_string, prefix) as spec:
        manifest = train_all(spec, config, workers=workers, progress=progress, tolerance=tolerance)
    s, gate = manifest["summary"], manifest["gate"]
    typer.echo(
        f"trained {s['models']} models ({config}) in {manifest['seconds']}s: version {manifest['version']}"
    )
    if "precision" in s:
        typer.echo(
            f"evaluation window: precision {s['precision']:.3f} recall {s['recall']:.3f} "
            f"F1 {s['f1']:.3f}; recall by type {json.dumps(s['recall_by_type'])}"
        )
    for key, err in list(manifest["errors"].items())[:20]:
        typer.echo(f"  FAILED {key}: {err}", err=True)
    verdict = "serving it" if gate["passed"] else "NOT serving it; the serving version is unchanged"
    typer.echo(f"gate: {gate['reason']}: {verdict}", err=not gate["passed"])
    raise typer.Exit(0 if gate["passed"] else 1)


models_app = typer.Typer(add_completion=False, no_args_is_help=True, help="Model versions: list, roll back.")
app.add_typer(models_app, name="models")


@models_app.command("list")
def models_list(
    store: str = StoreOpt, connection_string: str | None = ConnOpt, prefix: str = PrefixOpt
) -> None:
    """Every version written, the serving one marked."""
    from batch_scoring import versions

    with open_spec(store, connection_string, prefix) as spec:
        models = spec.open().models
        current = (versions.serving(models) or {}).get("version")
        for version in versions.versions(models):
            manifest = json.loads(models.read_bytes(versions.VERSION_MANIFEST.format(version=version)))
            gate = manifest.get("gate", {})
            mark = "*" if version == current else " "
            typer.echo(
                f"{mark} {version}  models {manifest['summary']['models']}  gate: {gate.get('reason', '')}"
            )


@models_app.command("rollback")
def models_rollback(
    store: str = StoreOpt,
    connection_string: str | None = ConnOpt,
    prefix: str = PrefixOpt,
    to: str | None = typer.Option(None, help="serve this version [default: the one before]"),
) -> None:
    """Serve the version the serving one replaced (or --to VERSION), in one write."""
    from batch_scoring import versions

    with open_spec(store, connection_string, prefix) as spec:
        manifest = versions.rollback(spec.open().models, to)
    typer.echo(f"serving version {manifest['version']}")


@app.command()
def tune(
    store: str = StoreOpt,
    connection_string: str | None = ConnOpt,
    prefix: str = PrefixOpt,
    limit: int | None = typer.Option(None, help="evaluate on the first N series only"),
    workers: int = WorkersOpt,
    out: Path | None = typer.Option(None, help="also write the markdown table here"),
) -> None:
    """Grid of features x gamma x nu, precision/recall against the injected labels."""
    from batch_scoring.evaluate import markdown
    from batch_scoring.evaluate import tune as run_tune

    with open_spec(store, connection_string, prefix) as spec:
        rows = run_tune(spec, limit=limit, workers=workers)
    table = markdown(rows)
    typer.echo(table)
    if out:
        out.write_text(table + "\n")


@app.command()
def quality(
    held_out: int = typer.Option(2000, help="held-out series the candidates are judged on"),
    tuning: int = typer.Option(500, help="other series the threshold rule is tuned on"),
    workers: int = WorkersOpt,
    out: Path | None = typer.Option(None, help="also write the report (markdown) here"),
) -> None:
    """Precision, recall, F1 with its spread and false alarms per sensor per day, on held-out
    generated series, for each model preset and a tuned threshold rule."""
    from batch_scoring.quality import evaluate, markdown

    report = evaluate(held_out=held_out, tuning=tuning, workers=workers)
    table = markdown(report)
    typer.echo(f"{table}\n\nbest F1: {report['best']}")
    if out:
        out.write_text(QUALITY_HEADER.format(**report) + table + f"\n\nBest F1: {report['best']}.\n")


QUALITY_HEADER = """# Anomaly-model quality on held-out series

Generated by `python -m batch_scoring quality --out docs/batch_quality.md` (`batch_scoring/quality.py`):
{held_out_series:,} held-out generated series of {readings:,} readings (one a minute), each series' first half
training its model, the second half judged against the generator's labels; the threshold rule's
two thresholds tuned on {tuning_series} other series (another seed). F1's interval: 2.5th-97.5th
percentile of 1,000 bootstrap resamples of the series.

"""


@app.command()
def score(
    store: str = StoreOpt,
    connection_string: str | None = ConnOpt,
    prefix: str = PrefixOpt,
    workers: int = WorkersOpt,
    mini_batch_size: int = typer.Option(10, help="partitions per run(mini_batch) call"),
    max_retries: int = typer.Option(2, help="retries of a failed partition"),
    error_threshold: int = typer.Option(0, help="failed partitions tolerated (-1: any)"),
    force: bool = typer.Option(False, help="rescore partitions whose output is up to date"),
    progress: bool = typer.Option(True),
    summary_json: Path | None = typer.Option(None, help="write the run summary here"),
) -> None:
    """Score every partition with N workers; exit 1 when failures exceed the error threshold."""
    from batch_scoring.runner import run_local

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with open_spec(store, connection_string, prefix) as spec:
        summary = run_local(
            spec,
            workers=workers,
            mini_batch_size=mini_batch_size,
            max_retries=max_retries,
            error_threshold=error_threshold,
            force=force,
            progress=progress,
        )
    typer.echo(summary.text())
    if summary_json:
        summary_json.parent.mkdir(parents=True, exist_ok=True)
        summary_json.write_text(json.dumps(summary.as_dict(), indent=1))
    raise typer.Exit(0 if summary.ok else 1)


@app.command()
def demo(
    store: str = StoreOpt,
    connection_string: str | None = ConnOpt,
    prefix: str = PrefixOpt,
    workers: int = WorkersOpt,
    preset: str = typer.Option("default", help="default | original"),
    progress: bool = typer.Option(True),
) -> None:
    """Default data set (3 devices x 5 sensors x 1,440 readings) -> train -> score -> summary."""
    from batch_scoring.generate import GenSpec
    from batch_scoring.generate import generate as run_generate
    from batch_scoring.model import PRESETS
    from batch_scoring.runner import run_local
    from batch_scoring.train import train_all

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    with open_spec(store, connection_string, prefix) as spec:
        typer.echo(f"store: {spec.describe()}")
        manifest = run_generate(spec, GenSpec(), workers=1, progress=False)
        typer.echo(f"generated {manifest['series']} series, {manifest['rows']:,} rows")
        models = train_all(spec, PRESETS[preset], workers=workers, progress=False)
        s = models["summary"]
        typer.echo(
            f"trained {s['models']} models: precision {s['precision']:.3f} recall {s['recall']:.3f} "
            f"F1 {s['f1']:.3f} (evaluation window)"
        )
        summary = run_local(spec, workers=workers, progress=progress)
    typer.echo(summary.text())
    raise typer.Exit(0 if summary.ok else 1)


@app.command("azurite")
def azurite_server(
    port: int = typer.Option(10000),
    location: Path | None = typer.Option(None, help="data folder [default: batch_scoring/azurite/data]"),
) -> None:
    """Run Azurite (blob only) in the foreground until Ctrl-C, for multi-command sessions."""
    import time

    from batch_scoring.azurite import AZURITE_DIR, Azurite

    location = location or AZURITE_DIR / "data"
    with Azurite(location=location, port=port) as az:
        typer.echo(f"Azurite blob service on 127.0.0.1:{az.port}, data in {location}; Ctrl-C stops it")
        typer.echo(f"connection string: {az.connection_string}")
        with contextlib.suppress(KeyboardInterrupt):
            while az.proc and az.proc.poll() is None:
                time.sleep(1)


def _settings(options: dict):
    """AmlSettings from the options the `aml` commands share (a command passes its ``locals()``)."""
    from batch_scoring.aml_job import AmlSettings

    return AmlSettings(
        cron=options["cron"],
        instance_count=options["instance_count"],
        max_concurrency_per_instance=options["max_concurrency"],
        mini_batch_size=str(options["mini_batch_size"]),
        error_threshold=options["error_threshold"],
        max_retries=options["max_retries"],
        compute=options["compute"],
        key_vault_url=options["key_vault"],
    )


CronOpt = typer.Option(None, help='cron expression instead of hourly recurrence, e.g. "0 * * * *"')
InstOpt = typer.Option(2, help="nodes for the parallel step")
ConcOpt = typer.Option(4, help="processes per node")
MbOpt = typer.Option(20, help="partition files per mini-batch")
ThrOpt = typer.Option(10, help="failed partitions tolerated (-1: any)")
RetryOpt = typer.Option(3, help="retries per mini-batch")
ComputeOpt = typer.Option("cpu-batch", help="compute cluster name")
VaultOpt = typer.Option(
    "", "--key-vault", envvar="KEY_VAULT_URL", help="Key Vault URL holding the retraining job's secrets"
)


@aml_app.command("yaml")
def aml_yaml(
    out: Path | None = typer.Option(None, help="output folder (default batch_scoring/aml/out)"),
    cron: str | None = CronOpt,
    instance_count: int = InstOpt,
    max_concurrency: int = ConcOpt,
    mini_batch_size: int = MbOpt,
    error_threshold: int = ThrOpt,
    max_retries: int = RetryOpt,
    compute: str = ComputeOpt,
    key_vault: str = VaultOpt,
) -> None:
    """Dry run: write the compute, the scoring pipeline and the retraining job with their
    schedules as YAML (nothing contacts Azure)."""
    settings = _settings(locals())
    from batch_scoring.aml_job import DEFAULT_OUT, build

    for name, path in build(settings, out or DEFAULT_OUT).items():
        typer.echo(f"{name}: {path}")


@aml_app.command("submit")
def aml_submit(
    subscription: str = typer.Option(..., envvar="AZURE_SUBSCRIPTION_ID"),
    resource_group: str = typer.Option(..., envvar="AZURE_RESOURCE_GROUP"),
    workspace: str = typer.Option(..., envvar="AZUREML_WORKSPACE"),
    once: bool = typer.Option(False, help="submit one job instead of creating the schedule"),
    cron: str | None = CronOpt,
    instance_count: int = InstOpt,
    max_concurrency: int = ConcOpt,
    mini_batch_size: int = MbOpt,
    error_threshold: int = ThrOpt,
    max_retries: int = RetryOpt,
    compute: str = ComputeOpt,
    key_vault: str = VaultOpt,
) -> None:  # pragma: no cover - needs an Azure subscription
    """Create the cluster and both schedules in a workspace (DefaultAzureCredential). Not run in CI."""
    settings = _settings(locals())
    from batch_scoring.aml_job import submit

    typer.echo(submit(subscription, resource_group, workspace, settings, once=once))


def main() -> None:
    app()


from batch_scoring import cli_stream  # noqa: E402, F401  (registers the streaming commands)
