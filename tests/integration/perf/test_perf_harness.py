"""The harness against real servers: perf_analyzer and locust on Triton, locust on azmlinfsrv,
and a Triton that dies failing the benchmark.

Short, bounded runs (a few seconds each, loopback only): they check that every tool gets real
answers with real inputs and leaves its own records, not the numbers themselves.
"""

from __future__ import annotations

import json
import os
import signal
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from faq.data import FaqDataset, load_dataset
from perf import OUT_DIR
from perf.baseline import models
from perf.baseline.server import SCRIPTS, AzmlServer
from perf.run import (
    QUICK,
    BenchmarkError,
    Run,
    locust,
    measure,
    summary,
    tool_environment,
    triton,
    write_inputs,
)
from serving.triton import TritonServer

IMAGE_MODEL = "efficientnet_lite0"  # the cheapest image ensemble


@pytest.fixture(scope="module")
def workload() -> Path:
    return write_inputs(OUT_DIR / "inputs")["workload"]


def _env(model: str = "") -> dict[str, str]:
    return tool_environment(PERF_MODEL=model, PERF_WORKLOAD=str(OUT_DIR / "inputs" / "workload.json"))


def test_a_run_against_a_server_it_did_not_start(triton_server: TritonServer, tmp_path: Path) -> None:
    """The path a GPU server is measured by (`python -m perf.run --url HOST:8000 --no-baselines`):
    perf_analyzer's own sweep over real questions and photos, its CSV kept, a summary table."""
    run = Run(["faq_match", IMAGE_MODEL], QUICK, tmp_path, [])
    measure(run, triton_server.http_url, baselines=False)
    for model in run.models:
        assert (tmp_path / f"pa_{model}.csv").read_text().startswith("Concurrency,Inferences/Second")
    levels = {(model, point.concurrency) for model, _, _, point in run.rows}
    assert levels == {("faq_match", 8), ("faq_match", 16), (IMAGE_MODEL, 2), (IMAGE_MODEL, 4)}
    assert all(p.throughput > 0 and 0 < p.p50_ms <= p.p99_ms for *_, p in run.rows)
    assert "| faq_match | triton | perf_analyzer | 16 |" in summary(run)
    assert triton_server.is_ready()


def test_locust_on_triton_keeps_its_records(
    triton_server: TritonServer, workload: Path, tmp_path: Path
) -> None:
    host = f"http://127.0.0.1:{triton_server.ports.http}"
    for user, model in (("TritonFaqUser", "faq_match"), ("TritonImageUser", IMAGE_MODEL)):
        point = locust(user, host, 2, 3, tmp_path / user, _env(model))
        assert point.throughput > 0 and point.failures == 0, (tmp_path / f"{user}.log").read_text()[-2000:]
        assert (tmp_path / f"{user}_stats.csv").is_file() and (OUT_DIR / "html" / f"{user}.html").is_file()


def test_locust_counts_error_answers_as_failures(
    triton_server: TritonServer, workload: Path, tmp_path: Path
) -> None:
    """Triton has no ``/score``: every answer is a 404, and none may count as throughput."""
    point = locust(
        "AzmlFaqUser", f"http://127.0.0.1:{triton_server.ports.http}", 2, 3, tmp_path / "v", _env()
    )
    assert point.failures > 0
    assert "HTTP 404" in (tmp_path / "v_failures.csv").read_text()


@pytest.fixture(scope="module")
def sklearn_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    ds = load_dataset()
    keep = ds.originals["faq_id"].iloc[:15]
    small = FaqDataset(
        ds.originals[ds.originals["faq_id"].isin(keep)].reset_index(drop=True),
        ds.duplicates[ds.duplicates["faq_id"].isin(keep)].reset_index(drop=True),
    )
    return models.prepare("faq_sklearn", tmp_path_factory.mktemp("models"), ds=small)


def test_azmlinfsrv_serves_the_sklearn_baseline_on_loopback(
    sklearn_model_dir: Path, workload: Path, tmp_path: Path
) -> None:
    server = AzmlServer(SCRIPTS["faq_sklearn"], sklearn_model_dir, workers=1, log_path=tmp_path / "azml.log")
    with server:
        assert "Listening at: http://127.0.0.1:" in (tmp_path / "azml.log").read_text()
        body = json.dumps({"question": "how do I remove an item from an array"}).encode()
        request = urllib.request.Request(f"{server.url}/score", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as resp:
            answer = json.loads(resp.read())
        assert len(answer["faq_id"]) == 5 and answer["answer"][0]
        bad = urllib.request.Request(f"{server.url}/score", b"{}", {"Content-Type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(bad, timeout=30)
        assert err.value.code == 400
        point = locust("AzmlFaqUser", server.url, 2, 4, tmp_path / "azml", _env())
    assert point.throughput > 0 and point.failures == 0
    assert server.process is None


def test_a_triton_that_dies_fails_the_benchmark_with_its_log(tmp_path: Path) -> None:
    with triton([IMAGE_MODEL], tmp_path) as alive:
        alive()
        os.kill(alive.server.process.pid, signal.SIGSEGV)
        alive.server.process.wait(timeout=60)
        with pytest.raises(BenchmarkError, match="Triton died during the benchmark") as info:
            alive()
    assert "Signal (11)" in str(info.value)
