"""Batch-scoring benchmark: 10,000 series x 1,440 readings end to end on this machine.

    .venv/bin/python -m perf.batch.bench          # full run (~10 min on 2 cores), updates perf/RESULTS.md
    .venv/bin/python -m perf.batch.bench --quick  # 300 series, smoke test of the harness

In one run on the same data: generate and train (one ONNX model per series); score subsets
of 100, 1,000 and 10,000 series with `python -m batch_scoring score`, each from a fresh
interpreter (rows/s, time per series, a least-squares line of the cost, the per-model overhead
inside the workers); the original architecture's one-process-per-model pattern on the first
series against the job on the same series, predictions compared; optionally the 1,000-series
subset through Blob Storage (a private Azurite). Not a test; its files stay under
`build/batch-bench`, its record is `perf/out/batch/bench.json` and a section of perf/RESULTS.md.
"""

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


def log(msg: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {msg}", flush=True)


def subset_store(full: Path, keys: list[str], dst: Path) -> Path:
    """A store holding only `keys` (data, models and a filtered manifest): the same files."""
    if dst.exists():
        shutil.rmtree(dst)
    manifest = json.loads((full / "models" / MODEL_MANIFEST).read_text())
    manifest["models"] = {k: manifest["models"][k] for k in keys}
    for k in keys:
        for sub, ext in (("data", "parquet"), ("models", "onnx")):
            target = dst / sub / f"{k}.{ext}"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(full / sub / f"{k}.{ext}", target)
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
    if work.exists():
        shutil.rmtree(work)
    (work / "models").mkdir(parents=True)
    data = LocalContainer(full / "data")
    frames = []
    for k in keys:
        name, payload = dataio.read_partition_bytes(data, Partition.parse(k))
        df = dataio.parse_frame(name, payload)
        frames.append(df)
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
    same = total = 0
    for k in keys:
        a = pd.read_csv(baseline_dir / "preds" / f"{k.replace('/', '_')}.csv")["Prediction"].to_numpy()
        b = pd.read_parquet(ours / "preds" / f"{k}.parquet")["Prediction"].to_numpy()
        same += int((a == b).sum())
        total += len(a)
    return same / total


def fit_line(points: list[tuple[int, float]]) -> tuple[float, float]:
    """``(fixed, per_item)`` of the least-squares line through ``(n, seconds)`` points."""
    per, fixed = np.polyfit(*np.array(points, float).T, 1)
    return float(fixed), float(per)


def markdown(r: dict) -> str:
    """The generated section of perf/RESULTS.md for one run (its record is bench.json)."""
    m, g, b = r["machine"], r["growth"], r["baseline"]
    lines = [
        SECTION,
        "",
        f"Run of {r['date']}: `{r['command']}` on {m['cpu']} ({m['cores']} cores, {m['memory_gib']:.0f} GiB, "
        f"load average {m['load_before'][0]:.2f} before, {m['load_after'][0]:.2f} after); {r['workers']} "
        f"workers, ONNX Runtime {m['onnxruntime']}, one thread per session, local-folder store.",
        "",
        f"Data: {r['series']:,} series x {r['readings']:,} readings. "
        + (
            f"Generated in {r['generate_s']:.0f} s; models trained and exported in {r['train_s']:.0f} s."
            if r.get("generate_s") is not None
            else "Data and models reused from a previous run."
        ),
    ]
    if (q := r.get("train_summary")) and "precision" in q:
        quality = f"precision {q['precision']:.3f}, recall {q['recall']:.3f}, F1 {q['f1']:.3f}"
        lines += ["", f"Quality on this data set: {quality}."]
    header = (
        "| series | rows | wall s | rows/s | ms per series | in worker, ms: read / model / predict / write |"
    )
    lines += ["", header, "|---:|---:|---:|---:|---:|---|"]
    for x in r["scales"]:
        t = x["timings_ms"]
        steps = f"{t['t_read']:.2f} / {t['t_model']:.2f} / {t['t_predict']:.2f} / {t['t_write']:.2f}"
        rate, per_series = x["rows"] / x["wall_s"], 1000 * x["wall_s"] / x["series"]
        figures = f"{x['wall_s']:.1f} | {rate:,.0f} | {per_series:.2f}"
        lines.append(f"| {x['series']:,} | {x['rows']:,} | {figures} | {steps} |")
    lines += [
        "",
        f"Cost growth: wall = {g['fixed_s']:.2f} s + n x {1000 * g['per_series_s']:.2f} ms (least squares);"
        f" model overhead in a worker {g['model_overhead_ms']:.2f} of {g['worker_ms_per_series']:.2f} ms.",
        "",
        f"Against the original pattern on the same {b['series']} series (a process per model, 2 at a time): "
        f"{b['wall_s']:.1f} s against {b['ours_wall_s']:.1f} s for the job (median of "
        f"{', '.join(f'{x:.1f}' for x in b['ours_runs_s'])} s): **{b['ratio']:.0f}x**; predictions agree "
        f"on {100 * b['agreement']:.3f}% of readings.",
    ]
    if a := r.get("azurite"):
        local = f"local folder {a['local_wall_s']:.1f} s"
        lines += ["", f"Through Azurite ({a['series']:,} series): {a['wall_s']:.1f} s ({local})."]
    return "\n".join(lines) + "\n"


def machine() -> dict[str, object]:
    """What the figures were measured on: CPU model, cores, memory, ONNX Runtime."""
    import onnxruntime

    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    cpu = next(
        (line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name")), ""
    )
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpu": cpu or "unknown CPU",
        "cores": os.cpu_count(),
        "memory_gib": memory,
        "onnxruntime": onnxruntime.__version__,
    }


@app.command()
def main(
    series: Annotated[int, typer.Option(help="total series (devices x 10 sensors)")] = 10_000,
    readings: Annotated[int, typer.Option()] = 1440,
    scales: Annotated[str, typer.Option(help="subset sizes to score")] = "100,1000,10000",
    baseline_series: Annotated[int, typer.Option(help="series for the original-pattern comparison")] = 100,
    azurite_series: Annotated[int, typer.Option(help="series scored through Azurite (0: skip)")] = 1000,
    workers: Annotated[int, typer.Option()] = 2,
    root: Annotated[Path, typer.Option()] = REPO / "build" / "batch-bench",
    reuse: Annotated[bool, typer.Option(help="keep data and models of a previous run")] = False,
    quick: Annotated[bool, typer.Option(help="300 series; writes under perf/out only")] = False,
    results: Annotated[Path | None, typer.Option(help="markdown file to update")] = RESULTS_MD,
) -> None:
    if quick:
        series, scales, baseline_series, azurite_series, results = 300, "30,100,300", 20, 100, None
    sizes = sorted({int(s) for s in scales.split(",")} | {series})
    sizes = [s for s in sizes if s <= series]
    gen = GenSpec(devices=series // 10, sensors=10, readings=readings, seed=2024)
    full = root / "full"
    spec = StoreSpec.parse(f"local:{full}")
    load_before = os.getloadavg()
    record: dict = {"series": series, "readings": readings, "workers": workers}
    record["command"] = " ".join(["python -m perf.batch.bench", *sys.argv[1:]])
    record["date"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")

    manifest_path = full / "models" / MODEL_MANIFEST
    reusable = (
        reuse
        and manifest_path.exists()
        and json.loads((full / "data" / "manifest.json").read_text())["generator"]["devices"] == gen.devices
    )
    if not reusable:
        if full.exists():
            shutil.rmtree(full)
        log(f"generating {series:,} series x {readings:,} readings")
        t0 = time.perf_counter()
        generate(spec, gen, workers=workers, progress=False)
        record["generate_s"] = time.perf_counter() - t0
        log(f"training {series:,} models")
        t0 = time.perf_counter()
        manifest = train_all(spec, PRESETS["default"], workers=workers, progress=False)
        record["train_s"] = time.perf_counter() - t0
        if manifest["errors"]:
            raise RuntimeError(f"training failed: {list(manifest['errors'].items())[:3]}")
    manifest = json.loads(manifest_path.read_text())
    record["train_summary"] = manifest["summary"]
    keys = sorted(manifest["models"])

    record["scales"] = []
    for n in sizes:
        store = full if n == series else subset_store(full, keys[:n], root / f"subset-{n}")
        shutil.rmtree(store / "preds", ignore_errors=True)
        log(f"scoring {n:,} series")
        res = run_cli(["--store", f"local:{store}"], workers, root / f"run-{n}")
        assert res["scored"] == n and res["failed"] == 0, res
        record["scales"].append({**res, "series": n})
        log(f"  {res['wall_s']:.1f} s wall, {res['rows'] / res['wall_s']:,.0f} rows/s")

    fixed, per = fit_line([(s["series"], s["wall_s"]) for s in record["scales"]])
    big = record["scales"][-1]["timings_ms"]
    overhead = {"model_overhead_ms": big["t_model"], "worker_ms_per_series": sum(big.values())}
    record["growth"] = {"fixed_s": fixed, "per_series_s": per, **overhead}

    nb = min(baseline_series, series)
    log(f"original pattern on {nb} series (one process per model)")
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
    b.update(ours_wall_s=median, ours_runs_s=ours, ratio=b["wall_s"] / median, agreement=same)
    record["baseline"] = b
    log(f"  original {b['wall_s']:.1f} s, job {median:.1f} s: {b['ratio']:.1f}x")

    if azurite_series:
        from batch_scoring.azurite import AZURITE_BIN, Azurite

        if AZURITE_BIN.exists():
            na = min(azurite_series, series)
            src = subset_store(full, keys[:na], root / f"subset-azurite-{na}")
            with Azurite(location=root / "azurite") as az:
                blob = StoreSpec.parse(f"azurite:{az.port}", prefix="bench-").open()
                log(f"uploading {na:,} series to Azurite")
                for sub, container in (("data", blob.data), ("models", blob.models)):
                    local = LocalContainer(src / sub)
                    for name in local.list():
                        container.write_bytes(name, local.read_bytes(name))
                log(f"scoring {na:,} series through Azurite")
                store = ["--store", f"azurite:{az.port}", "--prefix", "bench-"]
                res = run_cli(store, workers, root / "run-azurite")
            shutil.rmtree(root / "azurite", ignore_errors=True)
            local_n = next((s for s in record["scales"] if s["series"] == na), None)
            res.update(series=na, local_wall_s=local_n["wall_s"] if local_n else float("nan"))
            record["azurite"] = res
            log(f"  {res['wall_s']:.1f} s wall")

    record["machine"] = {**machine(), "load_before": load_before, "load_after": os.getloadavg()}
    (OUT_DIR / "batch").mkdir(parents=True, exist_ok=True)
    (OUT_DIR / "batch" / "bench.json").write_text(json.dumps(record, indent=1, default=str))
    print(section := markdown(record))
    if results is not None:
        results.write_text(replace_section(results.read_text() if results.exists() else "", SECTION, section))


if __name__ == "__main__":
    app()
