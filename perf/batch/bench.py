"""Batch-scoring benchmark: 10,000 series x 1,440 readings end to end on this machine.

    .venv/bin/python -m perf.batch.bench [--quick]   # ~10 min on 2 cores; updates perf/RESULTS.md

Subsets scored from fresh interpreters, and the original one-process-per-model pattern on the
same series; record in ``perf/out/batch/bench.json``. Blob Storage (Azurite) is exercised by the
integration tests, not timed here: an emulator's speed says nothing about Azure's."""

from __future__ import annotations

import json
import os
import pickle
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
import typer

from batch_scoring import dataio, features
from batch_scoring.generate import GenSpec, generate
from batch_scoring.model import PRESETS, fit
from batch_scoring.schema import MODEL_MANIFEST, VALUE, Partition
from batch_scoring.storage import LocalContainer, StoreSpec
from batch_scoring.train import train_all
from faq.evaluate import machine
from perf import OUT_DIR, RESULTS_MD, replace_section

REPO = Path(__file__).resolve().parents[2]
SECTION = "## Batch scoring"
app = typer.Typer(add_completion=False, help=__doc__)


def original_pattern_command(
    csv: Path, model: Path, device: str, sensor: str, out: Path, *extra: str
) -> list[str]:
    """The original architecture's one-process-per-model scoring of one series, as a command line."""
    script = REPO / "perf" / "batch" / "original_pattern.py"
    args = ["--csv", csv, "--model", model, "--device", device, "--sensor", sensor, "--out", out, *extra]
    return [sys.executable, str(script), *map(str, args)]


def subset_store(full: Path, keys: list[str], dst: Path) -> Path:
    """A store holding only `keys` (data, models and a filtered manifest): the same files."""
    shutil.rmtree(dst, ignore_errors=True)
    manifest = json.loads((full / "models" / MODEL_MANIFEST).read_text())
    manifest["models"] = {k: manifest["models"][k] for k in keys}
    for k in keys:
        for sub, name in (("data", f"{k}.parquet"), ("models", manifest["models"][k]["blob"])):
            (target := dst / sub / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(full / sub / name, target)
    (dst / "models" / MODEL_MANIFEST).write_text(json.dumps(manifest))
    return dst


def run_cli(store_args: list[str], workers: int, out: Path) -> dict:
    """`python -m batch_scoring score --force` in a fresh interpreter; wall time from outside."""
    out.mkdir(parents=True, exist_ok=True)
    summary = out / "summary.json"
    flags = f"--workers {workers} --force --no-progress --mini-batch-size 20 --summary-json {summary}"
    cmd = [sys.executable, "-m", "batch_scoring", "score", *store_args, *flags.split()]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{res.stdout}\n{res.stderr}")
    data = json.loads(summary.read_text())
    counts = {"rows": data["rows_scored"], "scored": data["scored"], "failed": data["failed"]}
    return {"wall_s": wall, **counts, "timings_ms": data["timings"]}


def baseline(full: Path, keys: list[str], work: Path, workers: int, config) -> dict:
    """The original pattern on `keys`: one process per model, whole CSV read by each."""
    shutil.rmtree(work, ignore_errors=True)
    (work / "models").mkdir(parents=True)
    data, frames = LocalContainer(full / "data"), []
    for k in keys:
        frames.append(df := dataio.parse_frame(*dataio.read_partition_bytes(data, Partition.parse(k))))
        x = features.compute(df[VALUE].to_numpy(), config.features)
        model = fit(x[: int(len(x) * config.train_fraction)], config)  # same data, same config
        with open(work / "models" / f"model_{k.replace('/', '_')}.pkl", "wb") as fh:
            pickle.dump(model, fh)
    csv = work / "sensor_data.csv"
    pd.concat(frames).to_csv(csv, index=False, date_format="%Y-%m-%d %H:%M:%S")

    def one(k: str) -> float:
        device, sensor = k.split("/")
        t0 = time.perf_counter()
        model = work / "models" / f"model_{device}_{sensor}.pkl"
        out = work / "preds" / f"{device}_{sensor}.csv"
        command = original_pattern_command(csv, model, device, sensor, out, "--features", config.features)
        subprocess.run(command, check=True, cwd=REPO)
        return time.perf_counter() - t0

    t0 = time.perf_counter()
    with ThreadPoolExecutor(workers) as pool:
        per_model = list(pool.map(one, keys))
    wall, rows = time.perf_counter() - t0, sum(len(f) for f in frames)
    return {"wall_s": wall, "series": len(keys), "rows": rows, "per_process_s": statistics.median(per_model)}


def agreement(baseline_dir: Path, ours: Path, keys: list[str]) -> float:
    """Share of readings where the original pattern (sklearn) and the job (ONNX) agree."""
    a = [pd.read_csv(baseline_dir / "preds" / f"{k.replace('/', '_')}.csv")["Prediction"] for k in keys]
    b = [pd.read_parquet(ours / "preds" / f"{k}.parquet")["Prediction"] for k in keys]
    return float((np.concatenate(a) == np.concatenate(b)).mean())


def fit_line(points: list[tuple[int, float]]) -> tuple[float, float]:
    """``(fixed, per_item)`` of the least-squares line through ``(n, seconds)`` points."""
    per, fixed = np.polyfit(*np.array(points, float).T, 1)
    return float(fixed), float(per)


def markdown(r: dict) -> str:
    """The generated section of perf/RESULTS.md for one run (its record is bench.json)."""
    g, b, q = r["growth"], r["baseline"], r.get("train_summary", {})
    made = f"made in {r['generate_s']:.0f} s, trained in {r['train_s']:.0f} s"
    lines = [
        SECTION,
        "",
        f"Run of {r['date']}: `{r['command']}` on {r['machine']} (load average {r['load'][0]:.2f} before, "
        f"{r['load'][1]:.2f} after); {r['workers']} workers, one ONNX Runtime thread per session.",
        "",
        f"Data: {r['series']:,} series x {r['readings']:,} readings ({made}); quality on it: "
        + ", ".join(f"{k} {q[k]:.3f}" for k in ("precision", "recall", "f1") if k in q)
        + ".",
        "",
        "| series | rows | wall s | rows/s | ms per series | in worker, ms: read / model / predict / write |",
        "|---:|---:|---:|---:|---:|---|",
    ]
    for x in r["scales"]:
        steps = " / ".join(f"{x['timings_ms'][k]:.2f}" for k in ("t_read", "t_model", "t_predict", "t_write"))
        wall = x["wall_s"]
        figures = f"{wall:.1f} | {x['rows'] / wall:,.0f} | {1000 * wall / x['series']:.2f}"
        lines.append(f"| {x['series']:,} | {x['rows']:,} | {figures} | {steps} |")
    lines += [
        "",
        f"Cost growth: wall = {g['fixed_s']:.2f} s + n x {1000 * g['per_series_s']:.2f} ms (least squares).",
        "",
        f"Against the original pattern on the same {b['series']} series (a process per model, 2 at a time): "
        f"{b['wall_s']:.1f} s against {b['ours_wall_s']:.1f} s for the job (median of "
        f"{', '.join(f'{x:.1f}' for x in b['ours_runs_s'])} s): **{b['ratio']:.0f}x**; predictions agree "
        f"on {100 * b['agreement']:.3f}% of readings.",
    ]
    return "\n".join(lines) + "\n"


@app.command()
def main(
    series: Annotated[int, typer.Option(help="total series (devices x 10 sensors)")] = 10_000,
    readings: Annotated[int, typer.Option()] = 1440,
    scales: Annotated[str, typer.Option(help="subset sizes to score")] = "100,1000,10000",
    baseline_series: Annotated[int, typer.Option(help="series for the original-pattern comparison")] = 100,
    workers: Annotated[int, typer.Option()] = 2,
    root: Annotated[Path, typer.Option()] = REPO / "build" / "batch-bench",
    quick: Annotated[bool, typer.Option(help="300 series; writes under perf/out only")] = False,
    results: Annotated[Path | None, typer.Option(help="markdown file to update")] = RESULTS_MD,
) -> None:
    if quick:
        series, scales, baseline_series, results = 300, "30,100,300", 20, None
    sizes = sorted(s for s in {int(s) for s in scales.split(",")} | {series} if s <= series)
    gen = GenSpec(devices=series // 10, sensors=10, readings=readings, seed=2024)
    full, load_before = root / "full", os.getloadavg()
    spec = StoreSpec.parse(f"local:{full}")
    record: dict = {"series": series, "readings": readings, "workers": workers, "machine": machine()}
    record["command"] = " ".join(["python -m perf.batch.bench", *sys.argv[1:]])
    record["date"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    shutil.rmtree(full, ignore_errors=True)
    typer.echo(f"generating {series:,} series x {readings:,} readings, then training")
    t0 = time.perf_counter()
    generate(spec, gen, workers=workers, progress=False)
    record["generate_s"], t0 = time.perf_counter() - t0, time.perf_counter()
    manifest = train_all(spec, PRESETS["default"], workers=workers, progress=False)
    record["train_s"] = time.perf_counter() - t0
    if manifest["errors"]:
        raise RuntimeError(f"training failed: {list(manifest['errors'].items())[:3]}")
    manifest = json.loads((full / "models" / MODEL_MANIFEST).read_text())
    record["train_summary"], keys = manifest["summary"], sorted(manifest["models"])

    record["scales"] = []
    for n in sizes:
        store = full if n == series else subset_store(full, keys[:n], root / f"subset-{n}")
        shutil.rmtree(store / "preds", ignore_errors=True)
        typer.echo(f"scoring {n:,} series")
        res = run_cli(["--store", f"local:{store}"], workers, root / f"run-{n}")
        assert res["scored"] == n and res["failed"] == 0, res
        record["scales"].append({**res, "series": n})
    fixed, per = fit_line([(s["series"], s["wall_s"]) for s in record["scales"]])
    record["growth"] = {"fixed_s": fixed, "per_series_s": per}

    nb = min(baseline_series, series)
    typer.echo(f"original pattern on {nb} series (one process per model)")
    config = replace(PRESETS["default"], **{k: manifest["config"][k] for k in ("features", "gamma", "nu")})
    ours_store = subset_store(full, keys[:nb], root / f"subset-baseline-{nb}")

    # The machine is shared: time the job before and after the baseline, report the median.
    def job() -> float:
        return run_cli(["--store", f"local:{ours_store}"], workers, root / "run-baseline")["wall_s"]

    ours = [job()]
    b = baseline(full, keys[:nb], root / "baseline", workers, config)
    ours += [job(), job()]
    median = statistics.median(ours)
    same = agreement(root / "baseline", ours_store, keys[:nb])
    record["baseline"] = {**b, "ours_wall_s": median, "ours_runs_s": ours, "ratio": b["wall_s"] / median}
    record["baseline"]["agreement"] = same

    record["load"] = [load_before[0], os.getloadavg()[0]]
    (OUT_DIR / "batch").mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "batch" / "bench.json").write_text(json.dumps(record, indent=1, default=str))
    print(section := markdown(record))
    if results is not None:
        results.write_text(replace_section(results.read_text() if results.exists() else "", SECTION, section))


if __name__ == "__main__":
    app()
