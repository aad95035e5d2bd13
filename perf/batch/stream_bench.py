"""Streaming benchmark: sustained ingestion into PostgreSQL, and one hour of new readings scored
for every sensor, against rescoring whole files.

    python -m perf.batch.stream_bench [--hours 3] [--rate 100000] [--quick]   # make stream-bench

On the local broker and PostgreSQL (started here): the simulator sends ``hours`` of readings
(one a minute per series, 10 per message) at ``rate`` readings/s from its own process while two
ingesters (one consumer group) store them; readings sent and committed are sampled every second.
Then every series is trained from the same readings in a batch store, each closed hour is scored
with ``score-window`` (its cost should not grow with the history before it), and the whole-file
job rescores the history (``score --force``), as it would every hour today. Each run is a fresh
interpreter. Records: ``perf/results/<date>/stream/``; section "Streaming" of RESULTS.md.
"""

from __future__ import annotations

import json
import multiprocessing
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Annotated

import numpy as np
import psycopg
import typer

from batch_scoring.events import ensure_topic, kafka_config
from batch_scoring.generate import GenSpec
from batch_scoring.ingest import create_schema
from batch_scoring.produce import send
from batch_scoring.services import Broker, Postgres
from perf import OUT_DIR, publish, records_folder
from perf.batch.bench import WORKERS, timed, trained
from serving.paths import REPO_ROOT

SECTION = "## Streaming"
PER_MESSAGE = 10  # readings per message, as a device that batches a few minutes


def ingest_sampled(db: str, config: dict, spec: GenSpec, ingesters: int, rate: float) -> dict:
    """Send from another process (``rate`` readings/s; 0: as fast as it can) while ``ingesters``
    consumers of one group store; sample readings sent and committed every second (committed
    offsets x readings per message: a count(*) of millions of rows every second would take a
    core from what it measures)."""
    spawn = multiprocessing.get_context("spawn")
    counter = spawn.Value("q", 0, lock=False)
    kwargs = {"per_message": PER_MESSAGE, "rate": rate, "counter": counter}
    sender = spawn.Process(target=send, args=(config, spec), kwargs=kwargs)
    samples, stop, query = [], threading.Event(), "SELECT coalesce(sum(next_offset), 0) FROM ingest_progress"

    def sample() -> None:
        with psycopg.connect(db, autocommit=True) as conn:
            while not stop.wait(1.0):
                done = conn.execute(query).fetchone()[0]  # type: ignore[index]
                samples.append((time.monotonic(), int(done) * PER_MESSAGE, counter.value))

    with psycopg.connect(db, autocommit=True) as conn:
        create_schema(conn)
    threading.Thread(target=sample, daemon=True).start()
    started = time.monotonic()
    sender.start()  # each ingester waits up to 30 s for its first message while the sender generates
    command = [sys.executable, "-m", "batch_scoring", "ingest", "--db", db, "--idle-exit", "30"]
    command += ["--bootstrap", config["bootstrap.servers"]]
    consumers = [
        subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True) for _ in range(ingesters)
    ]
    stored = sum(json.loads(c.communicate()[0].splitlines()[-1])["stored"] for c in consumers)
    sender.join()
    stop.set()
    total = spec.series * spec.readings
    # While the simulator sends: the rates (least-squares slopes) at which it sent and at which
    # readings were committed; equal when the ingesters keep up, lower when the lag grows.
    sending = [(t, n, s) for t, n, s in samples if s > 0] or [(started, 0, 0)]
    sending = sending[: next((i + 1 for i, (_, _, s) in enumerate(sending) if s >= total), len(sending))]
    slopes = np.polyfit([t for t, _, _ in sending], [(s, n) for _, n, s in sending], 1)[0]
    return {
        "ingesters": ingesters,
        "send_rate": rate,
        "sent_per_s": round(slopes[0]),
        "stored_per_s_while_sending": round(slopes[1]),
        "max_lag": max((s - n for _, n, s in samples), default=0),  # readings sent, not yet stored
        "lag_when_sent": sending[-1][2] - sending[-1][1],
        "readings": total,
        "stored": stored,
        "samples": [(round(t - started, 1), n, s) for t, n, s in samples],
    }


def main(
    series: Annotated[int, typer.Option(help="devices x 10 sensors")] = 10_000,
    hours: Annotated[int, typer.Option(help="hours of readings sent and ingested")] = 3,
    ingesters: Annotated[int, typer.Option(help="consumers in the ingest group")] = 2,
    rate: Annotated[float, typer.Option(help="readings/s the simulator sends (0: at once)")] = 100_000,
    quick: Annotated[bool, typer.Option(help="1,000 series, 2 hours, into perf/out")] = False,
    out: Annotated[Path | None, typer.Option(help="records folder")] = None,
) -> None:
    """Ingest, train, score hour by hour, rescore whole files; record and summarise."""
    if quick:
        series, hours, out = 1000, 2, out or OUT_DIR / "stream-quick"
    folder, work = records_folder(out, "stream"), Path(tempfile.mkdtemp(prefix="stream-bench-"))
    spec = GenSpec(devices=series // 10, sensors=10, readings=hours * 60, seed=2026)
    record: dict = {"series": series, "hours": []}
    with Postgres(log_path=folder / "postgres.log") as db, Broker(log_path=folder / "tansu.log") as broker:
        config = kafka_config(broker.bootstrap)
        ensure_topic(config, partitions=8)
        record["ingest"] = ingest_sampled(db.url, config, spec, ingesters, rate)
        i = record["ingest"]
        typer.echo(f"ingest: {i['stored']:,} stored, {i['stored_per_s_while_sending']:,}/s while sending")
        _, record["train_s"] = trained(work / "store", spec)
        store = ["--store", f"local:{work / 'store'}", "--workers", str(WORKERS)]
        for hour in range(hours):
            window = f"2024-01-01T{hour:02d}:00/2024-01-01T{hour + 1:02d}:00"
            seconds = timed("score-window", "--window", window, "--db", db.url, "--allow-open", *store)
            record["hours"].append({"hour": hour, "wall_s": round(seconds, 2)})
            typer.echo(f"hour {hour}: {seconds:.1f} s")
        record["whole_file_s"] = round(timed("score", "--force", "--no-progress", *store), 2)
    shutil.rmtree(work, ignore_errors=True)  # the models and their data: scratch
    (folder / "stream_bench.json").write_text(json.dumps(record, indent=1))
    typer.echo(publish(folder, SECTION, summary(record)))


def summary(r: dict) -> str:
    i, last = r["ingest"], r["hours"][-1]
    sending = f"{i['send_rate']:,.0f} readings/s" if i["send_rate"] else "as fast as it can"
    rows = "\n".join(f"| {h['hour']} | {h['hour']} | {h['wall_s']:.1f} |" for h in r["hours"])
    return (
        f"Ingestion, simulator to committed rows in PostgreSQL ({i['ingesters']} ingesters in one group, "
        f"{PER_MESSAGE} readings per message, 8 partitions), the simulator sending {sending}: "
        f"{i['readings']:,} readings, {i['stored']:,} stored. While it sent ({i['sent_per_s']:,} readings/s "
        f"measured), readings were committed at **{i['stored_per_s_while_sending']:,} readings/s**; the lag "
        f"(sent, not yet committed) was at most {i['max_lag']:,} readings, {i['lag_when_sent']:,} when the "
        f"last was sent.\n\n"
        f"Scoring one hour for {r['series']:,} sensors (`score-window`, {WORKERS} workers, a fresh "
        f"interpreter):\n\n| hour | hours of history before it | wall s |\n|---:|---:|---:|\n{rows}\n\n"
        f"Whole-file rescoring of the same {len(r['hours'])} hours (`score --force`): "
        f"{r['whole_file_s']:.1f} s, **{r['whole_file_s'] / last['wall_s']:.1f}x** the windowed run of the "
        f"last hour. Training: {r['train_s']:.0f} s.\n"
    )


if __name__ == "__main__":
    typer.run(main)
