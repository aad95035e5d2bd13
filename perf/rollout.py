"""Rollout benchmark: ``faq_match`` under steady load while a new version is switched in, then back.

    python -m perf.rollout [--seconds 120] [--users 4] [--out DIR]

locust's ``TritonFaqUser``s with ``--csv-full-history`` (p99 of the last 10 s, every second);
a release (``faq.release.register``) switched in at a third of the time and rolled back at two
thirds; records and goals: docs/perf.md, "FAQ rollout under load".
"""

from __future__ import annotations

import csv
import json
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Annotated

import typer

from perf import OUT_DIR, publish, records_folder
from perf.run import locust, tool_environment, triton, write_inputs

SECTION = "## FAQ rollout under load"
WINDOW_S = 10  # locust's window for the current percentiles


def main(
    seconds: Annotated[int, typer.Option(help="length of the load")] = 120,
    users: Annotated[int, typer.Option(help="locust users (closed loops); 4: about a third of capacity")] = 4,
    out: Annotated[
        Path | None, typer.Option(help="records folder (default perf/results/<date>/rollout)")
    ] = None,
) -> None:
    """Load, switch, roll back, record; exits 1 when a goal is missed."""
    from faq.data import load_dataset
    from faq.release import CLASSIFIER, POSTPROCESS, register
    from serving.versions import previous, switch

    folder = records_folder(out, "rollout")
    inputs = write_inputs(OUT_DIR / "inputs")
    repository = OUT_DIR / "rollout_repository"
    with triton(["faq_match"], folder, repository, admin_key="perf-rollout") as alive:
        version, _, _ = register(load_dataset(), repository, "perf.rollout", tolerance=1.0)

        def switches() -> list[dict]:
            started, done = time.time(), []
            for at, target in ((1 / 3, {CLASSIFIER: version, POSTPROCESS: version}), (2 / 3, None)):
                time.sleep(max(0.0, started + at * seconds - time.time()))
                begin, to = time.time(), target or previous(repository, "faq_match")
                switch(repository, "faq_match", to, alive.server.load)
                done.append({"begin": begin, "end": time.time(), "to": target or "previous"})
                alive()
            return done

        env = tool_environment(PERF_MODEL="faq_match", PERF_WORKLOAD=str(inputs["workload"]))
        with ThreadPoolExecutor(1) as pool:  # the switches while locust runs in the foreground
            switched = pool.submit(switches)
            locust(
                "TritonFaqUser",
                f"http://{alive()}",
                users,
                seconds,
                folder / "locust",
                env,
                "--csv-full-history",
            )
    done = switched.result()
    (folder / "switches.json").write_text(json.dumps(done, indent=1))
    write(folder, done)


def write(folder: Path, switches: list[dict]) -> None:
    """The summary from locust's own history: p99 while a switch was in its window vs steady."""
    with (folder / "locust_stats_history.csv").open(newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["Name"] == "Aggregated" and r["99%"] not in ("N/A", "0")]
    start = int(rows[0]["Timestamp"]) + WINDOW_S  # the first window holds the warm-up

    def in_switch(row: dict) -> bool:
        return any(s["begin"] <= int(row["Timestamp"]) <= s["end"] + WINDOW_S for s in switches)

    steady = [float(r["99%"]) for r in rows if start <= int(r["Timestamp"]) < switches[0]["begin"]]
    during = max(float(r["99%"]) for r in rows if in_switch(r))
    failures = int(rows[-1]["Total Failure Count"])
    requests = int(rows[-1]["Total Request Count"])
    base = statistics.median(steady)
    took = ", ".join(f"{s['end'] - s['begin']:.1f} s" for s in switches)
    text = publish(
        folder,
        SECTION,
        f"Requests {requests:,}, **failed {failures}**; a release and its rollback switched in {took}. "
        f"p99 (locust, last 10 s): steady median {base:.0f} ms, highest while a switch was in its "
        f"window {during:.0f} ms: **{during / base:.2f}x** (goal at most 2x).\n",
    )
    typer.echo(text)
    if failures or during > 2 * base:
        raise typer.Exit(1)


if __name__ == "__main__":
    typer.run(main)
