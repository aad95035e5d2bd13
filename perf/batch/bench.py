"""Batch-scoring benchmark: 10,000 series x 1,440 readings end to end on this machine.

    .venv/bin/python -m perf.batch.bench          # full run (~10 min on 2 cores), updates perf/RESULTS.md
    .venv/bin/python -m perf.batch.bench --quick  # 300 series, smoke test of the harness
    .venv/bin/python -m perf.batch.bench --from-json perf/out/batch/bench.json   # re-render only

What it measures, all in one run on the same data:

1. generate the data set (Parquet, one file per series) and train one ONNX model per series;
2. score subsets of 100, 1,000 and 10,000 series with `python -m batch_scoring score`
   (2 workers), each from a fresh interpreter, timed from outside: rows/s, time per series, how
   the cost grows (a least-squares line `wall = fixed + n * per_series`), and the per-model
   overhead measured inside the workers (read model + SHA-256 check + ONNX Runtime session);
3. the original architecture's pattern on the first `--baseline-series` series: one process per
   model (start Python, unpickle a scikit-learn model, read the whole CSV and filter, predict,
   write CSV), 2 at a time, against the job on the same series; predictions are compared;
4. optionally the 1,000-series subset through Blob Storage (a private Azurite).

It is not a test (nothing here runs in CI) and keeps every file under `build/batch-bench`.
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
from perf import OUT_DIR, RESULTS_MD, machine

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
    cmd = [
        sys.executable,
        "-m",
        "batch_scoring",
        "score",
        *store_args,
        "--workers",
        str(workers),
        "--force",
        "--no-progress",
        "--mini-batch-size",
        "20",
        "--summary-json",
        str(summary),
    ]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{res.stdout}\n{res.stderr}")
    data = json.loads(summary.read_text())
    return {
        "wall_s": wall,
        "job_s": data["seconds"],
        "rows": data["rows_scored"],
        "scored": data["scored"],
        "failed": data["failed"],
        "timings_ms": data["timings"],
    }


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
    wall = time.perf_counter() - t0
    return {
        "wall_s": wall,
        "series": len(keys),
        "rows": sum(len(f) for f in frames),
        "csv_mb": csv.stat().st_size / 1e6,
        "per_process_s_median": statistics.median(per_model),
    }


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
    n = np.array([p[0] for p in points], float)
    t = np.array([p[1] for p in points], float)
    per, fixed = np.polyfit(n, t, 1)
    return float(fixed), float(per)


def markdown(r: dict) -> str:
    m = r["machine"]
    lines = [
        SECTION,
        "",
        f"Measured {r['date']} on {m['cpu']} ({m['cores']} cores, {m['memory_gib']:.0f} GiB), shared with "
        f"other work: load average {m['load_before'][0]:.2f} before, {m['load_after'][0]:.2f} after. "
        f"{r['workers']} worker processes, ONNX Runtime {m['onnxruntime']} with 1 thread per session, "
        "local-folder store on the machine's disk.",
        "",
        f"Data: {r['series']:,} series x {r['readings']:,} readings = {r['series'] * r['readings']:,} rows "
        f"(Parquet, one file per series). Generated in {r['generate_s']:.0f} s; "
        f"{r['series']:,} models trained and exported to ONNX in {r['train_s']:.0f} s "
        f"({1000 * r['train_s'] / r['series']:.1f} ms per model of wall time)."
        if r.get("generate_s") is not None
        else "Data and models reused from a previous run.",
        "",
        *_quality(r.get("train_summary")),
        "### Scoring, end to end (`python -m batch_scoring score --force`, fresh interpreter)",
        "",
        "| series | rows | wall s | rows/s | ms per series "
        "| in-worker ms per series: read / model load / predict / write | load avg |",
        "|---:|---:|---:|---:|---:|---|---:|",
    ]
    for s in r["scales"]:
        t = s["timings_ms"]
        lines.append(
            f"| {s['series']:,} | {s['rows']:,} | {s['wall_s']:.1f} | {s['rows'] / s['wall_s']:,.0f} "
            f"| {1000 * s['wall_s'] / s['series']:.2f} | {t['t_read']:.2f} / {t['t_model']:.2f} / "
            f"{t['t_predict']:.2f} / {t['t_write']:.2f} | {s.get('load', float('nan')):.1f} |"
        )
    g = r["growth"]
    lines += [
        "",
        "Cost growth: "
        + "; ".join(
            f"{lo:,} -> {hi:,} series: wall x{w_hi / w_lo:.1f} for x{hi / lo:.0f} the series, "
            f"{1000 * m:.2f} ms per added series"
            for lo, hi, m, w_lo, w_hi in g["marginal"]
        )
        + ". Nothing grows faster than the number of series: the cost per added series falls as the "
        "per-process warm-up (interpreter, imports, worker pool, manifest, first ONNX Runtime session, "
        f"cold caches) is spread over more series (least-squares line: wall = {g['fixed_s']:.2f} s + n x "
        f"{1000 * g['per_series_s']:.2f} ms). "
        f"Per-model overhead inside a worker (read the ONNX bytes, SHA-256 check, create the session): "
        f"{g['model_overhead_ms']:.2f} ms of {g['worker_ms_per_series']:.2f} ms per series; predicting "
        f"{r['readings']:,} readings takes {g['predict_ms']:.2f} ms.",
    ]
    b = r["baseline"]
    lines += [
        "",
        f"### Against the original pattern ({b['series']} series, same run)",
        "",
        "| pattern | wall s | s per series | rows/s |",
        "|---|---:|---:|---:|",
        f"| original: one process per model, unpickle, read the whole CSV ({b['csv_mb']:.1f} MB) and filter, "
        f"predict, write CSV; {r['workers']} at a time | {b['wall_s']:.1f} | {b['wall_s'] / b['series']:.3f} "
        f"| {b['rows'] / b['wall_s']:,.0f} |",
        f"| this job: `batch_scoring score`, {r['workers']} workers (median of 3 runs: "
        f"{', '.join(f'{x:.1f}' for x in b['ours_runs_s'])} s) | {b['ours_wall_s']:.1f} "
        f"| {b['ours_wall_s'] / b['series']:.3f} | {b['rows'] / b['ours_wall_s']:,.0f} |",
        "",
        f"Ratio: the job is **{b['ratio']:.0f}x** faster on the same {b['series']} series "
        f"(median {b['per_process_s_median']:.2f} s per original process, most of it interpreter start and "
        f"imports of pandas and scikit-learn; load average {b['load']:.1f} during the baseline). "
        + (
            "Predictions are identical on every reading."
            if b["agreement"] == 1.0
            else f"Predictions agree on {100 * b['agreement']:.3f} % of readings (scikit-learn float64 "
            "vs ONNX Runtime float32; the differences sit on the decision boundary)."
        ),
    ]
    if r.get("azurite"):
        a = r["azurite"]
        lines += [
            "",
            f"Blob Storage (Azurite on localhost, {a['series']:,} series): {a['wall_s']:.1f} s "
            f"wall, {a['rows'] / a['wall_s']:,.0f} rows/s (local folder: {a['local_wall_s']:.1f} s).",
        ]
    lines += ["", "Command:", "", "```", r["command"], "```", ""]
    return "\n".join(lines)


def _quality(s: dict | None) -> list[str]:
    if not s or "precision" not in s:
        return []
    by = s["recall_by_type"]
    return [
        f"Model quality on this data set (evaluation windows, micro-averaged over all models): precision "
        f"{s['precision']:.3f}, recall {s['recall']:.3f}, F1 {s['f1']:.3f}; recall spike "
        f"{by['spike']['recall']:.2f}, drift {by['drift']['recall']:.2f}, "
        f"stuck {by['stuck']['recall']:.2f}; "
        f"{s['mean_support_vectors']:.1f} support vectors per model on average.",
        "",
    ]


def replace_section(document: str, section: str) -> str:
    """Replace `## Batch scoring` up to the next `## ` heading (the convention of perf/report.py)."""
    lines = document.splitlines(keepends=True)
    start = next((i for i, line in enumerate(lines) if line.rstrip() == SECTION), None)
    if start is None:
        head = document.rstrip() or "# Performance results"
        return head + "\n\n" + section
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    after = "".join(lines[end:])
    return "".join(lines[:start]) + section + ("\n" + after if after else "")


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
    from_json: Annotated[Path | None, typer.Option(help="re-render a saved bench.json")] = None,
) -> None:
    if from_json is not None:
        section = markdown(json.loads(from_json.read_text()))
        print(section)
        if results is not None:
            results.write_text(replace_section(results.read_text() if results.exists() else "", section))
        return
    if quick:
        series, scales, baseline_series, azurite_series, results = 300, "30,100,300", 20, 100, None
    sizes = sorted({int(s) for s in scales.split(",")} | {series})
    sizes = [s for s in sizes if s <= series]
    gen = GenSpec(devices=series // 10, sensors=10, readings=readings, seed=2024)
    full = root / "full"
    spec = StoreSpec.parse(f"local:{full}")
    load_before = machine.load_average()
    record: dict = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "series": series,
        "readings": readings,
        "workers": workers,
        "command": " ".join(["python -m perf.batch.bench", *sys.argv[1:]]),
    }

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
        out = root / f"run-{n}"
        out.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(store / "preds", ignore_errors=True)
        log(f"scoring {n:,} series")
        load = machine.load_average()[0]
        res = run_cli(["--store", f"local:{store}"], workers, out)
        assert res["scored"] == n and res["failed"] == 0, res
        res.update(series=n, load=(load + machine.load_average()[0]) / 2)
        record["scales"].append(res)
        log(f"  {res['wall_s']:.1f} s wall, {res['rows'] / res['wall_s']:,.0f} rows/s")

    fixed, per = fit_line([(s["series"], s["wall_s"]) for s in record["scales"]])
    big = record["scales"][-1]["timings_ms"]
    steps = [
        (
            a["series"],
            b["series"],
            (b["wall_s"] - a["wall_s"]) / (b["series"] - a["series"]),
            a["wall_s"],
            b["wall_s"],
        )
        for a, b in zip(record["scales"], record["scales"][1:], strict=False)
    ]
    record["growth"] = {
        "fixed_s": fixed,
        "per_series_s": per,
        "marginal": steps,
        "model_overhead_ms": big["t_model"],
        "predict_ms": big["t_predict"],
        "worker_ms_per_series": sum(big.values()),
    }

    nb = min(baseline_series, series)
    log(f"original pattern on {nb} series (one process per model)")
    config = replace(PRESETS["default"], **{k: manifest["config"][k] for k in ("features", "gamma", "nu")})
    ours_store = subset_store(full, keys[:nb], root / f"subset-baseline-{nb}")
    # The machine is shared: time the job before and after the baseline, report the median.
    ours = [run_cli(["--store", f"local:{ours_store}"], workers, root / "run-baseline")["wall_s"]]
    load = machine.load_average()[0]
    b = baseline(full, keys[:nb], root / "baseline", workers, config)
    b["load"] = (load + machine.load_average()[0]) / 2
    ours += [
        run_cli(["--store", f"local:{ours_store}"], workers, root / "run-baseline")["wall_s"]
        for _ in range(2)
    ]
    median = statistics.median(ours)
    b.update(
        ours_wall_s=median,
        ours_runs_s=ours,
        ratio=b["wall_s"] / median,
        agreement=agreement(root / "baseline", ours_store, keys[:nb]),
    )
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
                res = run_cli(
                    ["--store", f"azurite:{az.port}", "--prefix", "bench-"], workers, root / "run-azurite"
                )
            shutil.rmtree(root / "azurite", ignore_errors=True)
            local_n = next((s for s in record["scales"] if s["series"] == na), None)
            res.update(series=na, local_wall_s=local_n["wall_s"] if local_n else float("nan"))
            record["azurite"] = res
            log(f"  {res['wall_s']:.1f} s wall")

    import onnxruntime

    record["machine"] = {
        "cpu": machine.cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": machine.memory_gib(),
        "load_before": load_before,
        "load_after": machine.load_average(),
        "onnxruntime": onnxruntime.__version__,
    }
    out_dir = OUT_DIR / "batch"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "bench.json").write_text(json.dumps(record, indent=1, default=str))
    section = markdown(record)
    (out_dir / "RESULTS-batch.md").write_text(section)
    print(section)
    if results is not None:
        current = results.read_text() if results.exists() else ""
        results.write_text(replace_section(current, section))
        log(f"updated {results}")


if __name__ == "__main__":
    app()
