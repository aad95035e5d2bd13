"""Streaming benchmark: sustained ingestion into PostgreSQL, and one hour of new readings scored
for every sensor, against rescoring whole files.

    .venv/bin/python -m perf.batch.stream_bench [--series 10000] [--hours 3] [--ingesters 2]
        [--rate 100000] [--quick]

On the local broker and PostgreSQL (started here): the simulator sends ``hours`` of readings
(one a minute per series, 10 per message) at ``rate`` readings/s from its own process while the
ingesters (2 by default, one consumer group) store them; readings sent and committed are sampled
every second (rates while sending, lag).
Then models are trained for every series (the same readings in a batch store) and each closed
hour is scored with ``score-window`` (2 workers), each in a fresh interpreter: the cost of an
hour should not grow with the history before it. Last, the whole-file job rescores the same
history (``score --force``), as it would every hour today. Records:
``perf/results/<date>/stream/``; section "Streaming" of RESULTS.md.
"""

from __future__ import annotations

import itertools
import json
import multiprocessing
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import numpy as np
import psycopg
import typer

from batch_scoring.events import ensure_topic, kafka_config
from batch_scoring.generate import GenSpec, generate
from batch_scoring.ingest import create_schema
from batch_scoring.model import PRESETS
from batch_scoring.produce import send
from batch_scoring.services import Broker, Postgres
from batch_scoring.storage import StoreSpec
from batch_scoring.train import train_all
from faq.evaluate import machine
from perf import OUT_DIR, publish, records_folder
from serving.paths import REPO_ROOT

SECTION = "## Streaming"
PER_MESSAGE = 10  # readings per message, as a device that batches a few minutes


def timed(*args: str) -> float:
    """One ``python -m batch_scoring`` command in a fresh interpreter; its wall time."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "batch_scoring", *args], cwd=REPO_ROOT, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"{args[0]} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return time.perf_counter() - started


def ingest_sampled(db: str, config: dict, spec: GenSpec, ingesters: int, rate: float) -> dict:
    """Send from another process (at ``rate`` readings/s; 0: as fast as it can) while
    ``ingesters`` consumers of one group store (each waits up to 30 s for the first message: the
    sender generates its series first); sample sent and stored readings every second."""
    spawn = multiprocessing.get_context("spawn")
    counter = spawn.Value("q", 0, lock=False)
    sender = spawn.Process(
        target=send,
        args=(config, spec),
        kwargs={"per_message": PER_MESSAGE, "rate": rate, "counter": counter},
    )
    samples, stop = [], threading.Event()

    def sample() -> None:
        with psycopg.connect(db, autocommit=True) as conn:
            while not stop.wait(1.0):
                with conn.cursor() as cur:  # committed messages x readings per message: a count(*) of
                    # millions of rows every second would take a core from what it measures
                    done = cur.execute(
                        "SELECT coalesce(sum(next_offset), 0) FROM ingest_progress"
                    ).fetchone()[0]
                samples.append((time.monotonic(), int(done) * PER_MESSAGE, counter.value))

    with psycopg.connect(db, autocommit=True) as conn:
        create_schema(conn)
    threading.Thread(target=sample, daemon=True).start()
    started = time.monotonic()
    sender.start()
    command = [sys.executable, "-m", "batch_scoring", "ingest", "--db", db, "--idle-exit", "30"]
    command += ["--bootstrap", config["bootstrap.servers"]]
    consumers = [
        subprocess.Popen(command, cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True) for _ in range(ingesters)
    ]
    stored = sum(json.loads(c.communicate()[0].splitlines()[-1])["stored"] for c in consumers)
    sender.join()
    stop.set()
    total = spec.series * spec.readings
    first = next((t for t, n, _ in samples if n > 0), started)
    last = next((t for t, n, _ in samples if n >= total), time.monotonic())
    rates = [(n2 - n1) / (t2 - t1) for (t1, n1, _), (t2, n2, _) in itertools.pairwise(samples) if n2 > n1]
    # While the simulator sends: the rates (least-squares slopes over the samples) at which it sent
    # and at which readings were committed; equal when the ingesters keep up, lower when the lag grows.
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
        "seconds_first_to_last": round(last - first, 1),
        "readings_per_s": round(total / max(last - first, 1e-9)),
        "best_second_per_s": round(max(rates, default=0)),
        "samples": [(round(t - started, 1), n, s) for t, n, s in samples],
    }


def main(
    series: Annotated[int, typer.Option(help="devices x 10 sensors")] = 10_000,
    hours: Annotated[int, typer.Option(help="hours of readings sent and ingested")] = 3,
    ingesters: Annotated[int, typer.Option(help="consumers in the ingest group")] = 2,
    rate: Annotated[
        float, typer.Option(help="readings/s the simulator sends (0: as fast as it can)")
    ] = 100_000,
    quick: Annotated[bool, typer.Option(help="1,000 series, 2 hours, into perf/out")] = False,
    out: Annotated[Path | None, typer.Option(help="records folder")] = None,
) -> None:
    """Ingest, train, score hour by hour, rescore whole files; record and summarise."""
    if quick:
        series, hours, out = 1000, 2, out or OUT_DIR / "stream-quick"
    folder = records_folder(out, "stream")
    spec = GenSpec(devices=series // 10, sensors=10, readings=hours * 60, seed=2026)
    work = Path(tempfile.mkdtemp(prefix="stream-bench-"))
    record: dict = {"date": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC", "machine": machine(), "series": series}
    with (
        Postgres(log_path=folder / "postgres.log") as db,
        Broker(log_path=folder / "tansu.log") as broker,
    ):
        config = kafka_config(broker.bootstrap)
        ensure_topic(config, partitions=8)
        record["ingest"] = ingest_sampled(db.url, config, spec, ingesters, rate)
        typer.echo(f"ingest: {record['ingest']['readings_per_s']:,} readings/s")
        store = StoreSpec.parse(f"local:{work / 'store'}")
        generate(store, spec, workers=2, progress=False)
        started = time.perf_counter()
        assert train_all(store, PRESETS["default"], workers=2, progress=False)["gate"]["passed"]
        record["train_s"] = round(time.perf_counter() - started, 1)
        common = ["--db", db.url, "--store", f"local:{work / 'store'}", "--allow-open", "--workers", "2"]
        record["hours"] = []
        for hour in range(hours):
            window = f"2024-01-01T{hour:02d}:00/2024-01-01T{hour + 1:02d}:00"
            seconds = timed("score-window", "--window", window, *common)
            record["hours"].append({"hour": hour, "history_hours": hour, "wall_s": round(seconds, 2)})
            typer.echo(f"hour {hour}: {seconds:.1f} s")
        record["whole_file_s"] = round(
            timed(
                "score", "--store", f"local:{work / 'store'}", "--force", "--no-progress", "--workers", "2"
            ),
            2,
        )
    shutil.rmtree(work, ignore_errors=True)  # 10,000 models and their data: scratch
    (folder / "stream_bench.json").write_text(json.dumps(record, indent=1))
    typer.echo(publish(folder, SECTION, summary(record)))


def summary(r: dict) -> str:
    i, last = r["ingest"], r["hours"][-1]
    sending = f"{i['send_rate']:,.0f} readings/s" if i["send_rate"] else "as fast as it can"
    rows = "\n".join(f"| {h['hour']} | {h['history_hours']} | {h['wall_s']:.1f} |" for h in r["hours"])
    return (
        f"Ingestion, simulator to committed rows in PostgreSQL ({i['ingesters']} ingesters in one group, "
        f"{PER_MESSAGE} readings per message, 8 partitions), the simulator sending {sending}: "
        f"{i['readings']:,} readings. While it sent ({i['sent_per_s']:,} readings/s measured), readings "
        f"were committed at **{i['stored_per_s_while_sending']:,} readings/s**; the lag (sent, not yet "
        f"committed) was at most {i['max_lag']:,} readings, {i['lag_when_sent']:,} when the last was sent. "
        f"First to last committed reading: {i['readings_per_s']:,} readings/s (best second "
        f"{i['best_second_per_s']:,}/s); {i['stored']:,} stored.\n\n"
        f"Scoring one hour for {r['series']:,} sensors (`score-window`, 2 workers, fresh interpreter):\n\n"
        f"| hour | hours of history before it | wall s |\n|---:|---:|---:|\n{rows}\n\n"
        f"Whole-file rescoring of the same {len(r['hours'])} hours (`score --force`): "
        f"{r['whole_file_s']:.1f} s, **{r['whole_file_s'] / last['wall_s']:.1f}x** the windowed run of the "
        f"last hour. Training: {r['train_s']:.0f} s.\n"
    )


if __name__ == "__main__":
    typer.run(main)
