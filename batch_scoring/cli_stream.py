"""The streaming half of the CLI: ``services``, ``produce``, ``ingest``, ``score-window`` and
``snapshot`` (registered on ``batch_scoring.cli.app``). The broker is the local one
(``--bootstrap HOST:PORT``) or an Azure Event Hubs namespace (``--event-hubs`` or
$EVENT_HUBS_CONNECTION_STRING); the database a URL (``--db`` or $SENSOR_DB_URL), Azure Database
for PostgreSQL included."""

from __future__ import annotations

import contextlib
import json
import logging
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import typer

from batch_scoring.cli import ConnOpt, StoreOpt, app
from batch_scoring.events import TOPIC

BootstrapOpt = typer.Option(None, "--bootstrap", envvar="KAFKA_BOOTSTRAP", help="local broker HOST:PORT")
EventHubsOpt = typer.Option(
    None, "--event-hubs", envvar="EVENT_HUBS_CONNECTION_STRING", help="Event Hubs namespace connection string"
)
TopicOpt = typer.Option(TOPIC, "--topic", envvar="SENSOR_TOPIC", help="topic (an Event Hub in Azure)")
DbOpt = typer.Option(..., "--db", envvar="SENSOR_DB_URL", help="PostgreSQL URL")
LatenessOpt = typer.Option(600, help="the lateness the ingester allows, seconds")


def _logging() -> None:
    """Progress and run summaries as log lines a cluster keeps; the Azure SDK's per-request
    lines only as warnings."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("azure").setLevel(logging.WARNING)


def _kafka(bootstrap: str | None, event_hubs: str | None) -> dict[str, str]:
    from batch_scoring.events import kafka_config

    try:
        return kafka_config(bootstrap, event_hubs)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc


@app.command()
def services(
    data: Path = typer.Option(None, help="PostgreSQL's data folder [default: a new temporary one]"),
    partitions: int = typer.Option(8, help="partitions of the readings topic"),
) -> None:
    """Run the local broker and PostgreSQL in the foreground until Ctrl-C; prints their addresses."""
    from batch_scoring.events import ensure_topic, kafka_config
    from batch_scoring.services import Broker, Postgres

    _logging()
    logs = Path(tempfile.mkdtemp(prefix="stream-services-"))
    pg_data = data or Path(tempfile.mkdtemp(prefix="pg-"))
    with (
        Postgres(pg_data, log_path=logs / "postgres.log") as db,
        Broker(log_path=logs / "tansu.log") as broker,
    ):
        ensure_topic(kafka_config(broker.bootstrap), partitions=partitions)
        typer.echo(f"export KAFKA_BOOTSTRAP={broker.bootstrap} SENSOR_DB_URL={db.url}")
        typer.echo(f"logs in {logs}; Ctrl-C stops both")
        with contextlib.suppress(KeyboardInterrupt):
            while broker.exit_code() is None and db.exit_code() is None:
                time.sleep(1)


@app.command()
def produce(
    bootstrap: str | None = BootstrapOpt,
    event_hubs: str | None = EventHubsOpt,
    topic: str = TopicOpt,
    devices: int = typer.Option(3),
    sensors: int = typer.Option(5),
    minutes: int = typer.Option(60, help="simulated minutes (one reading per series per minute)"),
    start: str = typer.Option("2024-01-01T00:00:00", help="time of the first reading (UTC)"),
    seed: int = typer.Option(7),
    rate: float = typer.Option(0.0, help="readings per second (0: as fast as the broker takes them)"),
    per_message: int = typer.Option(1, help="readings of one series per message"),
    partitions: int = typer.Option(8, help="partitions when the topic is created here"),
    labels: Path | None = typer.Option(None, help="write the anomaly labels here (Parquet)"),
) -> None:
    """Send the generator's readings to the topic in time order, as devices would."""
    from batch_scoring.events import ensure_topic
    from batch_scoring.generate import GenSpec
    from batch_scoring.produce import send

    config = _kafka(bootstrap, event_hubs)
    if not event_hubs:
        ensure_topic(config, topic, partitions)
    spec = GenSpec(devices=devices, sensors=sensors, readings=minutes, start=start, seed=seed)
    sent = send(config, spec, topic=topic, rate=rate, per_message=per_message, labels=labels)
    typer.echo(f"sent {sent.readings:,} readings in {sent.messages:,} messages in {sent.seconds:.1f} s")


@app.command()
def ingest(
    db: str = DbOpt,
    bootstrap: str | None = BootstrapOpt,
    event_hubs: str | None = EventHubsOpt,
    topic: str = TopicOpt,
    group: str = typer.Option("ingest", help="consumer group (run several for more partitions)"),
    window_s: int = typer.Option(60, help="aggregation interval, seconds"),
    lateness_s: int = typer.Option(600, help="how late a reading may arrive and still count"),
    batch: int = typer.Option(5000, help="messages per database transaction at most"),
    idle_exit: float | None = typer.Option(None, help="stop after this many seconds without a message"),
    broker_timeout_s: float = typer.Option(60.0, help="exit 1 when the broker is unreachable this long"),
    db_timeout_s: float = typer.Option(60.0, help="exit 1 when the database is unreachable this long"),
    metrics_port: int | None = typer.Option(None, help="serve Prometheus metrics on this port"),
    summary_json: Path | None = typer.Option(None, help="write this run's totals here"),
) -> None:
    """Consume readings into PostgreSQL exactly once and aggregate them per interval."""
    from batch_scoring.ingest import IngestError, Settings, run

    _logging()
    settings = Settings(
        db=db,
        kafka=_kafka(bootstrap, event_hubs),
        topic=topic,
        group=group,
        window=timedelta(seconds=window_s),
        lateness=timedelta(seconds=lateness_s),
        batch=batch,
        idle_exit_s=idle_exit,
        broker_timeout_s=broker_timeout_s,
        db_timeout_s=db_timeout_s,
    )
    if metrics_port is not None:
        from batch_scoring.metrics import IngestMetrics

        settings.metrics = IngestMetrics()
        settings.metrics.serve(metrics_port)
    try:
        totals = run(settings)
    except IngestError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    typer.echo(json.dumps(totals.as_dict()))
    if summary_json:
        summary_json.write_text(json.dumps(totals.as_dict(), indent=1))


@app.command("score-window")
def score_window_command(
    window: str = typer.Option(
        "last", help="START/END (ISO 8601, within one clock hour), or `last`: the latest closed hour"
    ),
    catch_up: int = typer.Option(
        0, help="with `last`: also the N hours before it that have no success marker"
    ),
    db: str = DbOpt,
    store: str = StoreOpt,
    connection_string: str | None = ConnOpt,
    shard: str = typer.Option("0/1", help="I/N: score the series of shard I of N (an Indexed Job's index)"),
    topic: str = TopicOpt,
    width_s: int = typer.Option(60, help="the aggregation interval the ingester used, seconds"),
    lateness_s: int = LatenessOpt,
    allow_open: bool = typer.Option(False, help="score even if late readings may still arrive"),
    force: bool = typer.Option(False, help="score again a window that has its success marker"),
    workers: int = typer.Option(2, "--workers", "-w", help="worker processes running the models"),
    metrics_file: Path | None = typer.Option(None, help="write Prometheus metrics here (textfile collector)"),
) -> None:
    """Score windows of aggregated readings; exit 1 if a series failed, 3 if a window is not closed."""
    import psycopg

    from batch_scoring.cli import open_spec
    from batch_scoring.ingest import closed_before
    from batch_scoring.windowed import Shard, Window, WindowError, closed_hours, score_window, worker_pool

    _logging()
    try:
        part = Shard.parse(shard)
        spans = None if window == "last" else [Window.parse(window)]
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    from azure.core.exceptions import AzureError

    outcomes, refused, broken = [], None, None  # typer's Exit is a RuntimeError: open_spec makes it 2
    with open_spec(store, connection_string, "") as spec, psycopg.connect(db, autocommit=True) as conn:
        closed = closed_before(conn, topic, timedelta(seconds=lateness_s))
        spans = spans or closed_hours(closed, 1 + catch_up)
        pool = worker_pool(spec, workers) if workers > 1 and spans else None
        try:
            opened = spec.open()
            width = timedelta(seconds=width_s)
            for span in spans:
                if not allow_open and (closed is None or closed < span.end):
                    refused = f"window {span} is not closed yet (closed up to {closed})"
                    break
                run = score_window(conn, opened, span, width=width, shard=part, force=force, pool=pool)
                outcomes.append(run)
                typer.echo(json.dumps(run.as_dict()))
        except (WindowError, AzureError, psycopg.OperationalError) as exc:
            broken = f"{type(exc).__name__}: {exc}".splitlines()[0]
        finally:
            if pool is not None:
                pool.shutdown(cancel_futures=True)
    if metrics_file is not None:
        from batch_scoring.metrics import write_window_metrics

        write_window_metrics(metrics_file, outcomes)
    if broken:
        typer.echo(f"error: {broken}", err=True)
        raise typer.Exit(1)
    if refused or not spans:
        typer.echo(f"error: {refused or 'no closed hour yet: nothing has been ingested'}", err=True)
        raise typer.Exit(3)
    raise typer.Exit(1 if any(o.failed for o in outcomes) else 0)


@app.command()
def snapshot(
    db: str = DbOpt,
    store: str = StoreOpt,
    connection_string: str | None = ConnOpt,
    days: float = typer.Option(7.0, help="how much history, up to the latest closed interval"),
    topic: str = TopicOpt,
    lateness_s: int = LatenessOpt,
) -> None:
    """Write each series' closed intervals of the last DAYS to the store's `data` (what `train`
    reads): the scheduled retraining's first step."""
    import psycopg

    from batch_scoring.cli import open_spec
    from batch_scoring.ingest import closed_before
    from batch_scoring.windowed import export_series

    with open_spec(store, connection_string, "") as spec, psycopg.connect(db, autocommit=True) as conn:
        closed = closed_before(conn, topic, timedelta(seconds=lateness_s))
        if closed is None:
            typer.echo("error: nothing has been ingested yet", err=True)
            raise typer.Exit(3) from None
        series, rows = export_series(conn, spec.open(), closed - timedelta(days=days), closed)
    typer.echo(f"wrote {series} series, {rows:,} intervals up to {closed.isoformat()}")
