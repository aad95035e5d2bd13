"""The GPU path without Docker: build, serve and measure the image ensembles on one GPU machine.

    scripts/gpu_check.sh --fetch     # here: put what must travel into .gpu/ (wheels, ~58 MB)
    scripts/gpu_check.sh --out DIR   # on the GPU machine: install .gpu/, then this check
    scripts/gpu_check.sh --cpu       # here: the same run on the CPU, a tiny network (CI runs it)
    python scripts/gpu_check.py --record DIR/gpu_check.json   # its section into perf/RESULTS.md

In one run: build each network (ResNet-152 and EfficientNet-Lite0 by default) in PyTorch on the
GPU from its provenance (random weights, labelled so, where the real ones cannot travel) and
measure its compute-only throughput at its best batch, the ceiling; render the ``gpu-local``
repository (the network as a Python-backend step in half precision, decoding over the CPU cores)
and start the local Triton from the ``nvidia-pytriton`` wheel; check one answer per ensemble
against the same network run directly; then load each ensemble with encoded JPEGs
(``--images-per-request`` per gRPC request) at rising concurrency and record images/s, p50/p99 latency, GPU
utilisation, and the CPU cores the preprocessing instances used. ``--cpu`` runs all of it on the
CPU in FP32 with a ResNet-14 stand-in and EfficientNet-Lite0, in about a minute, to test the
path end to end where there is no GPU.
"""

from __future__ import annotations

import argparse
import io
import json
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ensembles.steps.torch_network import DEVICE_ENV  # noqa: E402
from export.build_repository import build  # noqa: E402
from imaging.networks import NETWORKS  # noqa: E402
from imaging.postprocess import top_k  # noqa: E402
from imaging.preprocess import preprocess_bytes  # noqa: E402
from imaging.samples import all_samples  # noqa: E402
from imaging.specs import CLASS_ID, IMAGE, SCORE, model_names  # noqa: E402
from serving.catalog import models_by_name  # noqa: E402
from serving.triton import Ports, TritonServer, locate_triton  # noqa: E402

SECTION = "## Image classification on GPU"
TINY_DEPTH = 14
CPU_STAND_INS = {"resnet152_pytorch": {"depth": TINY_DEPTH}}  # --cpu: EfficientNet-Lite0 is small
DEFAULT_MODELS = ["resnet152_pytorch", "efficientnet_lite0"]
SPAWN_S, WARM_S = 5.0, 2.0  # client processes start, then load the server unmeasured, then measure


def jpegs() -> list[bytes]:
    """The sample photos in the wheels, each encoded as a JPEG (quality 90)."""
    from PIL import Image

    out = []
    for path in all_samples().values():
        buffer = io.BytesIO()
        Image.open(path).convert("RGB").save(buffer, format="JPEG", quality=90)
        out.append(buffer.getvalue())
    return out


def network_model(name: str, artifacts: Path, device: str, dtype: object) -> object:
    """The network exactly as the served step builds it (``BUILDER`` on the provenance)."""
    import torch

    from ensembles.steps.torch_network import resolve

    spec = models_by_name()[model_names(NETWORKS[name])[1]]
    info = json.loads((artifacts / "imaging" / f"{name}.json").read_text())
    model = resolve(str(spec.gpu_local.torch_builder))(info)
    return model.to(device, dtype, memory_format=torch.channels_last).eval()


def ceiling(model: object, device: str, dtype: object, batches: list[int], seconds: float) -> list[dict]:
    """Compute-only images/s at each batch size: input already on the device, no server."""
    import torch

    points = []
    for batch in batches:
        x = torch.randn(batch, 3, 224, 224, device=device).to(dtype)
        x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            for _ in range(3):
                model(x)  # type: ignore[operator]
            runs, start = 0, time.perf_counter()
            while runs < 3 or time.perf_counter() - start < seconds:
                model(x)  # type: ignore[operator]
                runs += 1
                if device == "cuda":
                    torch.cuda.synchronize()
        points.append({"batch": batch, "images_per_s": batch * runs / (time.perf_counter() - start)})
    return points


def check_answers(url: str, name: str, model: object, device: str, dtype: object) -> dict:
    """Each photo alone through the ensemble against the same network run directly here."""
    import torch
    import tritonclient.grpc as grpcclient

    client, network = grpcclient.InferenceServerClient(url), NETWORKS[name]
    worst, same_top1 = 0.0, 0
    for image in jpegs():
        request = grpcclient.InferInput(IMAGE, [1, 1], "BYTES")
        request.set_data_from_numpy(np.array([[image]], dtype=object))
        result = client.infer(name, [request])
        pixels = torch.from_numpy(preprocess_bytes(image, network.preprocess)[None]).to(device, dtype)
        pixels = pixels.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode():
            logits = model(pixels).float().cpu().numpy()  # type: ignore[operator]
        ids, scores = top_k(logits, 5, network.outputs_logits)
        same_top1 += int(result.as_numpy(CLASS_ID)[0][0] == ids[0][0])
        worst = max(worst, float(np.abs(result.as_numpy(SCORE)[0] - scores[0]).max()))
    photos = len(all_samples())
    return {"photos": photos, "same_top1": same_top1, "max_score_diff": worst, "ok": same_top1 == photos}


def _client_process(url: str, model: str, threads: int, per_request: int, start: float, end: float) -> list:
    """One load-generating process: ``threads`` closed loops from ``start`` (after a warm-up) to
    ``end`` (wall-clock times); returns (end time, latency s, images served, error) per request."""
    import tritonclient.grpc as grpcclient

    images = jpegs()
    data = np.array([[images[i % len(images)]] for i in range(per_request)], dtype=object)
    records: list[tuple[float, float, int, str]] = []

    def loop() -> None:
        client = grpcclient.InferenceServerClient(url)
        request = grpcclient.InferInput(IMAGE, [per_request, 1], "BYTES")
        request.set_data_from_numpy(data)
        time.sleep(max(0.0, start - WARM_S - time.time()))
        while time.time() < end:
            t0 = time.time()
            try:
                client.infer(model, [request], client_timeout=60)
                records.append((time.time(), time.time() - t0, per_request, ""))
            except Exception as exc:  # an error or a shed request is counted, with its reason
                records.append((time.time(), time.time() - t0, 0, str(exc)[:300]))

    workers = [threading.Thread(target=loop) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    return [r for r in records if start <= r[0] <= end]


def cpu_ticks(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError):
            pass
    return total


def gpu_sampler(out: Path) -> subprocess.Popen | None:
    query = ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-lms", "250"]
    try:
        return subprocess.Popen(query, stdout=out.open("w"), stderr=subprocess.DEVNULL)
    except OSError:
        return None


def load(server: TritonServer, url: str, name: str, concurrency: int, args: argparse.Namespace) -> dict:
    """One load level: throughput, latency, GPU utilisation and the preprocessing's CPU cores."""
    processes = max(1, min(concurrency, args.client_processes))
    threads = [concurrency // processes + (i < concurrency % processes) for i in range(processes)]
    pre = server.stubs().get(model_names(NETWORKS[name])[0], [])
    samples = args.out / f"gpu_util_{name}_{concurrency}.csv"
    # Spawned, not forked: this process holds CUDA and gRPC state that a fork must not copy.
    with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("spawn")) as pool:
        start = time.time() + SPAWN_S + WARM_S
        end = start + args.seconds
        futures = [
            pool.submit(_client_process, url, name, n, args.images_per_request, start, end) for n in threads
        ]
        time.sleep(max(0.0, start - time.time()))
        ticks, sampler = cpu_ticks(pre), gpu_sampler(samples)
        time.sleep(max(0.0, end - time.time()))
        pre_ticks = cpu_ticks(pre) - ticks
        if sampler:
            sampler.terminate()
        records = [r for f in futures for r in f.result()]
    served = [r for r in records if r[2]]
    latencies = sorted(1000 * r[1] for r in served) or [float("nan")]
    utilisation = [float(v) for v in samples.read_text().split()] if sampler and samples.exists() else []
    return {
        "concurrency": concurrency,
        "images_per_s": sum(r[2] for r in served) / args.seconds,
        "p50_ms": latencies[len(latencies) // 2],
        "p99_ms": latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))],
        "failed": len(records) - len(served),
        "errors": dict(Counter(r[3] for r in records if not r[2]).most_common(5)),
        "gpu_util_pct": statistics.mean(utilisation) if utilisation else None,
        "preprocess_cores": pre_ticks / os.sysconf("SC_CLK_TCK") / args.seconds,
    }


def markdown(r: dict) -> str:
    lines = [
        SECTION,
        "",
        f"Run of {r['date']}: `{r['command']}` on {r['device']} ({r['cores']} CPU cores), "
        f"torch {r['torch']}, Triton 2.51 from nvidia-pytriton, target `gpu-local`, "
        f"{r['precision']}, {r['images_per_request']} JPEGs per gRPC request.",
    ]
    for name, m in r["models"].items():
        best = max(m["ceiling"], key=lambda p: p["images_per_s"])
        top = max(m["levels"], key=lambda p: p["images_per_s"])
        check = m["answers"]
        lines += [
            "",
            f"**{name}** ({m['weights']}): compute-only ceiling {best['images_per_s']:,.0f} images/s "
            f"at batch {best['batch']} "
            f"(PyTorch alone); ensemble, encoded JPEG in and top-5 out, {top['images_per_s']:,.0f} images/s "
            f"at concurrency {top['concurrency']}: **{top['images_per_s'] / best['images_per_s']:.0%} of the "
            f"ceiling**. Answers: top-1 as the network run here on {check['same_top1']}/{check['photos']} "
            f"photos, scores within {check['max_score_diff']:.1e}.",
            "",
            "| concurrency | images/s | p50 ms | p99 ms | failed | GPU util % | preprocessing cores |",
            "|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for p in m["levels"]:
            util = "n/a" if p["gpu_util_pct"] is None else f"{p['gpu_util_pct']:.0f}"
            figures = f"{p['images_per_s']:,.0f} | {p['p50_ms']:.1f} | {p['p99_ms']:.1f} | {p['failed']}"
            lines.append(f"| {p['concurrency']} | {figures} | {util} | {p['preprocess_cores']:.1f} |")
        for p in m["levels"]:
            for reason, count in p.get("errors", {}).items():
                lines.append(f"\nConcurrency {p['concurrency']}, {count} failed: `{reason}`")
    if r.get("server_errors"):
        lines += ["", "The server's log, errors (first of each):", ""]
        lines += [f"- `{line}`" for line in r["server_errors"]]
    return "\n".join(lines) + "\n"


def server_errors(log: Path, limit: int = 20) -> list[str]:
    """The distinct error lines of the server's log (Triton's ``E`` lines, a stub's abort), first
    of each, without the time stamp: why requests failed, in the results that travel back."""
    found: dict[str, None] = {}
    for line in log.read_text(errors="replace").splitlines() if log.exists() else []:
        if line.startswith("E") or "terminate called" in line or "what():" in line:
            found.setdefault(line.split("]", 1)[-1].strip()[:300])
    return list(found)[:limit]


def weights_note(info: dict) -> str:
    if info.get("note"):
        return str(info["note"])
    return (
        "Random weights: meaningless labels" if info["weights"] == "random" else f"Weights: {info['weights']}"
    )


def run(args: argparse.Namespace) -> dict:
    import torch

    device = "cpu" if args.cpu else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA device: run with --cpu to test the path on the CPU")
    dtype = torch.float32 if args.cpu else torch.float16
    # Built beside OUT, not in it: only the results travel back from a device run.
    work = args.out.parent / f"{args.out.name}-build"
    artifacts, repository = work / "artifacts", work / "repository"
    for name in args.models:  # provenance only: the step builds the network from it
        module = __import__(str(NETWORKS[name].torch_module), fromlist=["describe"])
        module.describe(artifacts, **(CPU_STAND_INS.get(name, {}) if args.cpu else {}))
    build("gpu-local", repository, artifacts, only=args.models, with_steps=True)
    result: dict = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join(["scripts/gpu_check.sh", *sys.argv[1:]]),
        "device": torch.cuda.get_device_name(0)
        if device == "cuda"
        else f"CPU ({platform.processor() or 'x86-64'})",
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "precision": "FP32" if args.cpu else "FP16",
        "images_per_request": args.images_per_request,
        "models": {},
    }
    models = {}
    for name in args.models:
        models[name] = network_model(name, artifacts, device, dtype)
        batches = [1, 8] if args.cpu else [1, 8, 32, 64, 128, 256]
        ceiling_s = 0.5 if args.cpu else 3.0
        info = json.loads((artifacts / "imaging" / f"{name}.json").read_text())
        result["models"][name] = {
            "weights": weights_note(info),
            "ceiling": ceiling(models[name], device, dtype, batches, ceiling_s),
        }
        print(f"{name} ceiling: {result['models'][name]['ceiling']}", flush=True)
    if args.cpu:
        os.environ[DEVICE_ENV] = "cpu"
    loopback = ("--http-address=127.0.0.1", "--grpc-address=127.0.0.1", "--metrics-address=127.0.0.1")
    server = TritonServer(repository, Ports.free(), log_path=args.out / "triton.log", extra_args=loopback)
    server.start(timeout=900)
    try:
        url = f"127.0.0.1:{server.ports.grpc}"
        for name in args.models:
            entry = result["models"][name]
            entry["answers"] = check_answers(url, name, models[name], device, dtype)
            print(f"{name} answers: {entry['answers']}", flush=True)
            entry["levels"] = []
            for concurrency in args.concurrency:
                entry["levels"].append(load(server, url, name, concurrency, args))
                print(f"{name} c={concurrency}: {entry['levels'][-1]}", flush=True)
    finally:
        server.stop()
        result["server_errors"] = server_errors(args.out / "triton.log")
    return result


def stub_preflight() -> None:
    """The backend stub embeds libpython: say which library is missing instead of a load error."""
    stub = locate_triton().stub
    linked = subprocess.run(["ldd", str(stub)], capture_output=True, text=True).stdout
    missing = [line.split()[0] for line in linked.splitlines() if "not found" in line]
    if missing:
        raise SystemExit(f"{stub} cannot load {missing}: put their folder on LD_LIBRARY_PATH")


def model_passed(m: dict) -> bool:
    return m["answers"]["ok"] and bool(m["levels"]) and all(p["failed"] == 0 for p in m["levels"])


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--cpu", action="store_true", help="on the CPU, FP32, ResNet-14 stand-in, short")
    torch_networks = [name for name, network in NETWORKS.items() if network.torch_module]
    parser.add_argument("--models", nargs="+", default=DEFAULT_MODELS, choices=torch_networks)
    parser.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",")], default=None)
    parser.add_argument("--seconds", type=float, default=None, help="measured seconds per level")
    parser.add_argument("--images-per-request", type=int, default=8)
    parser.add_argument("--client-processes", type=int, default=4)
    parser.add_argument("--out", type=Path, default=REPO / "build" / "gpu-check")
    parser.add_argument("--record", type=Path, help="a gpu_check.json: write its section into --results")
    parser.add_argument("--results", type=Path, default=None, help="default perf/RESULTS.md")
    args = parser.parse_args()
    from perf import RESULTS_MD, replace_section

    if args.record:
        section, results = markdown(json.loads(args.record.read_text())), args.results or RESULTS_MD
        results.write_text(replace_section(results.read_text(), SECTION, section))
        return
    args.concurrency = args.concurrency or ([1, 2] if args.cpu else [1, 4, 16, 32, 64])
    args.seconds = args.seconds or (3.0 if args.cpu else 10.0)
    args.out.mkdir(parents=True, exist_ok=True)
    stub_preflight()
    result = run(args)
    (args.out / "gpu_check.json").write_text(json.dumps(result, indent=1))
    (args.out / "gpu_check.md").write_text(text := markdown(result))
    print(text)
    if not all(model_passed(m) for m in result["models"].values()):
        raise SystemExit("GPU check FAILED: a wrong answer or a failed request (see above)")


if __name__ == "__main__":
    main()
