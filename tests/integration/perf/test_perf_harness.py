"""The harness against real servers: perf_analyzer and locust on Triton, locust on azmlinfsrv.

Short, bounded runs (a few seconds each, loopback only): they check that every tool gets real
answers with real inputs, not the numbers themselves.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from faq.data import FaqDataset, load_dataset
from perf import perf_analyzer, workloads
from perf.baseline import models
from perf.baseline.server import SCRIPTS, AzmlServer
from perf.locust_runner import LocustRun, run_locust
from perf.perf_analyzer import PerfAnalyzerRun
from serving.triton import TritonServer

IMAGE_MODEL = "efficientnet_lite0"  # the cheapest image ensemble


@pytest.fixture(scope="module")
def workload(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("workload")
    return workloads.write_workload(
        out / "workload.json", workloads.faq_questions(20), workloads.image_files()[:3]
    )


def test_perf_analyzer_sweeps_an_image_ensemble_with_real_photos(
    triton_server: TritonServer, tmp_path: Path
) -> None:
    data = workloads.write_pa_inputs(tmp_path, [], workloads.image_files()[:3])["image"]
    run = PerfAnalyzerRun(
        model=IMAGE_MODEL,
        input_data=data,
        url=triton_server.http_url,
        concurrency=(1, 2),
        measurement_request_count=10,
        max_trials=3,
        timeout_s=180,
    )
    points = perf_analyzer.run_sweep(run, tmp_path)
    assert [p.concurrency for p in points] == [1, 2], (tmp_path / f"pa_{IMAGE_MODEL}_c1.log").read_text()[
        -2000:
    ]
    for point in points:
        assert point.throughput > 0 and 0 < point.p50_ms <= point.p99_ms
        assert point.requests and point.requests >= 10


def test_perf_analyzer_sends_real_questions(triton_server: TritonServer, tmp_path: Path) -> None:
    from serving.catalog import models_by_name

    if "faq_match" not in models_by_name():
        pytest.fail("faq_match is not in the catalog")
    data = workloads.write_pa_inputs(tmp_path, workloads.faq_questions(50), [])["faq"]
    run = PerfAnalyzerRun(
        model="faq_match",
        input_data=data,
        url=triton_server.http_url,
        concurrency=(4,),
        measurement_request_count=200,
        timeout_s=120,
    )
    (point,) = perf_analyzer.run_sweep(run, tmp_path)
    assert point.throughput > 0 and point.requests >= 200


@pytest.mark.parametrize(
    ("user", "model"),
    [("TritonImageUser", IMAGE_MODEL), ("TritonFaqUser", "faq_match"), ("TritonFaqJsonUser", "faq_match")],
)
def test_locust_on_triton_gets_only_successes(
    triton_server: TritonServer, workload: Path, tmp_path: Path, user: str, model: str
) -> None:
    run = LocustRun(
        user,
        f"http://127.0.0.1:{triton_server.ports.http}",
        model,
        "triton",
        users=2,
        run_time_s=4,
        workload=workload,
        triton_model=model,
    )
    point = run_locust(run, tmp_path)
    assert point is not None, (tmp_path / f"{run.stem}.log").read_text()[-2000:]
    assert point.requests and point.requests > 0 and point.failures == 0


def test_locust_counts_error_answers_as_failures(
    triton_server: TritonServer, workload: Path, tmp_path: Path
) -> None:
    """Triton has no ``/score``: every answer is a 404, and none may count as throughput."""
    url = f"http://127.0.0.1:{triton_server.ports.http}"
    run = LocustRun("AzmlFaqUser", url, "faq_match", "triton", users=2, run_time_s=3, workload=workload)
    point = run_locust(run, tmp_path)
    assert point is not None and point.requests and point.requests > 0
    assert point.failures == point.requests
    failures = (tmp_path / f"{run.stem}_failures.csv").read_text()
    assert "HTTP 404" in failures


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

        run = LocustRun(
            "AzmlFaqUser", server.url, "faq_sklearn", "azmlinfsrv", users=2, run_time_s=4, workload=workload
        )
        point = run_locust(run, tmp_path)
    assert point is not None and point.requests and point.requests > 0 and point.failures == 0
    assert server.process is None


def test_run_all_measures_a_server_it_did_not_start(triton_server: TritonServer, tmp_path: Path) -> None:
    """The path a GPU server is measured by (`python -m perf.run_all --url HOST:8000 --no-baselines`),
    here against the local session server: perf_analyzer and locust figures, a report, no restart."""
    import dataclasses

    from perf import run_all

    plan = dataclasses.replace(
        run_all.Plan.quick(), faq_concurrency=(1,), faq_users=(2,), locust_seconds=3, faq_window_requests=50
    )
    results = tmp_path / "RESULTS.md"
    record = run_all.run(
        ["faq_match"],
        plan,
        tmp_path / "out",
        results,
        tmp_path / "plots",
        url=triton_server.http_url,
        baselines=False,
    )
    tools = {(p.tool, p.label) for p in record.points if p.failures == 0 and p.throughput > 0}
    assert {("perf_analyzer", ""), ("locust", ""), ("locust", "json")} <= tools, record.points
    assert record.target_url == triton_server.http_url
    assert any("was not started by this run" in note for note in record.notes)
    assert not any("Triton died" in note for note in record.notes)
    text = results.read_text()
    assert "`faq_match` ≥ 1,000 req/s" in text and "### locust runs" in text
    assert triton_server.is_ready()
