"""Batch-scoring benchmark: 10,000 series x 1,440 readings scored end to end on this machine.

    python -m perf.batch.bench [--quick]      # make batch-bench: ~12 min on 2 cores

The job (``batch_scoring score``, each run in a fresh interpreter) on subsets of growing size,
then the original one-process-per-model pattern (``original_pattern.py``) on the first series,
timed between runs of the job on the same series. Records: ``perf/results/<date>/batch/``;
section "Batch scoring" of RESULTS.md. Blob Storage (Azurite) is exercised by the integration
tests, not timed here: an emulator's speed says nothing about Azure's."""

from __future__ import annotations

import json
import pickle
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
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
from perf import OUT_DIR, publish, records_folder
from serving.paths import REPO_ROOT

SECTION = "## Batch scoring"
WORKERS = 2


def timed(*args: str) -> float:
    """One ``python -m batch_scoring`` command in a fresh interpreter; its wall time."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "batch_scoring", *args], cwd=REPO_ROOT, capture_output=True, text=True
    )
    if done.returncode != 0:
        raise RuntimeError(f"{args[0]} failed:\n{done.stdout[-2000:]}\n{done.stderr[-2000:]}")
    return time.perf_counter() - started


def trained(store: Path, spec: GenSpec) -> tuple[dict, float]:
    """Generated series and their models in a local store; the manifest it now serves (as
    ``train_all`` published it), training seconds."""
    local = StoreSpec.parse(f"local:{store}")
    generate(local, spec, workers=WORKERS, progress=False)
    started = time.perf_counter()
    manifest = train_all(local, PRESETS["default"], workers=WORKERS, progress=False)
    if not manifest["gate"]["passed"]:
        raise RuntimeError(f"the models were not published: {manifest['gate']}")
    return manifest, time.perf_counter() - started


def score(store: Path, out: Path) -> dict:
    """The whole-file job on every series of ``store``: wall time from outside, its own summary."""
    flags = f"--workers {WORKERS} --force --no-progress --mini-batch-size 20 --summary-json {out}"
    wall = timed("score", "--store", f"local:{store}", *flags.split())
    return {"wall_s": wall, **json.loads(out.read_text())}


def subset_store(manifest: dict, full: Path, keys: list[str], dst: Path) -> Path:
    """A store holding only ``keys`` of ``full`` (data, models, and ``manifest`` filtered to
    them): the same files."""
    manifest = {**manifest, "models": {k: manifest["models"][k] for k in keys}}
    for k in keys:
        for sub, name in (("data", f"{k}.parquet"), ("models", manifest["models"][k]["blob"])):
            (dst / sub / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(full / sub / name, dst / sub / name)
    (dst / "models" / MODEL_MANIFEST).write_text(json.dumps(manifest))
    return dst


def original_pattern_command(
    csv: Path, model: Path, device: str, sensor: str, feature_set: str, out: Path
) -> list[str]:
    """The original architecture's one-process-per-model scoring of one series, as a command line."""
    script = Path(__file__).with_name("original_pattern.py")
    return [sys.executable, str(script), *map(str, (csv, model, device, sensor, feature_set, out))]


def original_pattern(full: Path, keys: list[str], work: Path, config) -> dict:
    """The original pattern on ``keys``, ``WORKERS`` at a time: a process per model, each reading
    the whole CSV of every series; models fitted on the same data with the same configuration."""
    data, frames = LocalContainer(full / "data"), []
    (work / "models").mkdir(parents=True)
    for k in keys:
        frames.append(df := dataio.parse_frame(*dataio.read_partition_bytes(data, Partition.parse(k))))
        x = features.compute(df[VALUE].to_numpy(), config.features)
        model = fit(x[: int(len(x) * config.train_fraction)], config)
        (work / "models" / f"{k.replace('/', '_')}.pkl").write_bytes(pickle.dumps(model))
    csv = work / "sensor_data.csv"
    pd.concat(frames).to_csv(csv, index=False, date_format="%Y-%m-%d %H:%M:%S")

    def one(k: str) -> float:
        name, started = k.replace("/", "_"), time.perf_counter()
        model, out = work / "models" / f"{name}.pkl", work / "preds" / f"{name}.csv"
        subprocess.run(original_pattern_command(csv, model, *k.split("/"), config.features, out), check=True)
        return time.perf_counter() - started

    started = time.perf_counter()
    with ThreadPoolExecutor(WORKERS) as pool:
        per_process = statistics.median(pool.map(one, keys))
    return {
        "wall_s": time.perf_counter() - started,
        "per_process_s": per_process,
        "csv_mb": csv.stat().st_size / 1e6,
    }


def agreement(original: Path, ours: Path, keys: list[str]) -> float:
    """Share of readings where the original pattern (scikit-learn) and the job (ONNX) agree."""
    a = [pd.read_csv(original / "preds" / f"{k.replace('/', '_')}.csv")["Prediction"] for k in keys]
    b = [pd.read_parquet(ours / "preds" / f"{k}.parquet")["Prediction"] for k in keys]
    return float((np.concatenate(a) == np.concatenate(b)).mean())


def fit_line(points: list[tuple[int, float]]) -> tuple[float, float]:
    """``(fixed, per_item)`` of the least-squares line through ``(n, seconds)`` points."""
    per, fixed = np.polyfit(*np.array(points, float).T, 1)
    return float(fixed), float(per)


def main(
    series: Annotated[int, typer.Option(help="total series (devices x 10 sensors)")] = 10_000,
    readings: Annotated[int, typer.Option(help="readings per series")] = 1440,
    scales: Annotated[str, typer.Option(help="subset sizes to score")] = "100,1000",
    baseline_series: Annotated[int, typer.Option(help="series for the original pattern")] = 100,
    quick: Annotated[bool, typer.Option(help="300 series, into perf/out/batch-quick")] = False,
    out: Annotated[Path | None, typer.Option(help="records folder")] = None,
) -> None:
    """Generate, train, score at every scale, compare with the original pattern; record."""
    if quick:
        series, scales, baseline_series, out = 300, "30,100", 20, out or OUT_DIR / "batch-quick"
    folder, work = records_folder(out, "batch"), Path(tempfile.mkdtemp(prefix="batch-bench-"))
    manifest, train_s = trained(work / "full", GenSpec(series // 10, 10, readings, seed=2024))
    keys = sorted(manifest["models"])
    record: dict = {
        "series": series,
        "readings": readings,
        "train_s": train_s,
        "quality": manifest["summary"],
    }
    record["scales"] = []
    for n in sorted({int(s) for s in scales.split(",") if int(s) < series} | {series}):
        store = (
            work / "full"
            if n == series
            else subset_store(manifest, work / "full", keys[:n], work / f"subset-{n}")
        )
        typer.echo(f"scoring {n:,} series")
        record["scales"].append({"series": n, **score(store, folder / f"score-{n}.json")})
    fixed, per = fit_line([(s["series"], s["wall_s"]) for s in record["scales"]])
    record["growth"] = {"fixed_s": fixed, "per_series_s": per}

    n = min(baseline_series, series)
    typer.echo(f"original pattern on {n} series, between runs of the job on them")
    ours = subset_store(manifest, work / "full", keys[:n], work / "ours")
    config = replace(PRESETS["default"], **{k: manifest["config"][k] for k in ("features", "gamma", "nu")})
    runs = [score(ours, folder / "score-ours.json")["wall_s"]]
    original = original_pattern(work / "full", keys[:n], work / "original", config)
    runs += [score(ours, folder / "score-ours.json")["wall_s"] for _ in range(2)]
    same = agreement(work / "original", ours, keys[:n])
    record["original"] = {**original, "series": n, "ours_runs_s": runs, "agreement": same}
    shutil.rmtree(work, ignore_errors=True)  # 10,000 models and their data: scratch
    (folder / "bench.json").write_text(json.dumps(record, indent=1))
    typer.echo(publish(folder, SECTION, summary(record)))


def summary(r: dict) -> str:
    """The generated table of a run (the judgement goes in a NOTE.md beside the records)."""
    q, g, o = r["quality"], r["growth"], r["original"]
    quality = ", ".join(f"{k} {q[k]:.3f}" for k in ("precision", "recall", "f1") if k in q)
    lines = [
        f"{r['series']:,} series x {r['readings']:,} readings, {WORKERS} workers, one ONNX Runtime thread "
        f"per session; models trained in {r['train_s']:.0f} s; quality on this data: {quality}.",
        "",
        "| series | rows | wall s | rows/s | in worker, ms per series: read / model / predict / write |",
        "|---:|---:|---:|---:|---|",
    ]
    for x in r["scales"]:
        steps = " / ".join(f"{x['timings'][k]:.2f}" for k in ("t_read", "t_model", "t_predict", "t_write"))
        rate = x["rows_scored"] / x["wall_s"]
        lines.append(
            f"| {x['series']:,} | {x['rows_scored']:,} | {x['wall_s']:.1f} | {rate:,.0f} | {steps} |"
        )
    ours = statistics.median(o["ours_runs_s"])
    runs = ", ".join(f"{s:.1f}" for s in o["ours_runs_s"])
    lines += [
        "",
        f"Cost growth (least squares): wall = {g['fixed_s']:.2f} s + n x {1000 * g['per_series_s']:.2f} ms.",
        "",
        f"Against the original pattern on the same {o['series']} series (a process per model reading the "
        f"whole {o['csv_mb']:.1f} MB CSV, {WORKERS} at a time, median {o['per_process_s']:.2f} s each): "
        f"{o['wall_s']:.1f} s against {ours:.1f} s for the job (median of {runs} s): "
        f"**{o['wall_s'] / ours:.0f}x**; predictions agree on {100 * o['agreement']:.3f}% of readings.",
    ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    typer.run(main)
