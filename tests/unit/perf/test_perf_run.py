"""perf.run without servers: inputs, the tools' records read back, A/B rounds, the summary."""

from __future__ import annotations

import base64
import json
import shutil
import struct
from pathlib import Path

import pytest

from perf import run as perf_run
from perf.run import QUICK, BenchmarkError, Plan, Point, Run, interleave, summary, write_inputs

DATA = Path(__file__).parent / "data"


def test_inputs_hold_the_same_real_data_for_both_tools(tmp_path: Path) -> None:
    files = write_inputs(tmp_path)
    faq, image = (json.loads(files[k].read_text())["data"] for k in ("faq", "image"))
    workload = json.loads(files["workload"].read_text())
    assert [step["TEXT"]["content"][0] for step in faq] == workload["questions"]
    assert len(image) == len(workload["image_files"]) > 0
    raw = base64.b64decode(image[0]["IMAGE"]["b64"])  # Triton's BYTES layout: length, then bytes
    assert raw == struct.pack("<I", len(raw) - 4) + Path(workload["image_files"][0]).read_bytes()


def test_perf_analyzer_points_come_from_its_own_csv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    csv_path = tmp_path / "pa.csv"
    monkeypatch.setattr(
        perf_run, "_run", lambda *a, **k: shutil.copy(DATA / "perf_analyzer_c1.csv", csv_path)
    )
    monkeypatch.setattr(perf_run, "tool_environment", lambda **k: {})
    (point,) = perf_run.perf_analyzer("m", "localhost:1", tmp_path / "in.json", "1:1", csv_path, 10)
    assert point == Point(1, 549.57, 1.653, 4.899)  # microseconds in the CSV, milliseconds here


def test_locust_points_come_from_its_stats_csv_even_when_it_exits_1(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fails_after_writing(*args: object, **kwargs: object) -> None:
        shutil.copy(DATA / "locust_stats.csv", f"{tmp_path / 'visit'}_stats.csv")
        raise BenchmarkError("locust exited 1")

    monkeypatch.setattr(perf_run, "_run", fails_after_writing)
    point = perf_run.locust("TritonImageUser", "http://127.0.0.1:1", 8, 5, tmp_path / "visit", {})
    assert point == Point(8, 387.6321108644237, 6, 35, failures=0)


def test_a_tool_that_writes_nothing_fails_the_run(tmp_path: Path) -> None:
    with pytest.raises(BenchmarkError, match="exited 3"):
        perf_run._run(["sh", "-c", "echo broken; exit 3"], tmp_path / "x.log", 10, {})
    assert "broken" in (tmp_path / "x.log").read_text()


def test_interleaved_rounds_alternate_the_order() -> None:
    seen: list[str] = []

    def visit(name: str, value: float):
        return lambda number: seen.append(f"{name}{number}") or value

    rounds = interleave({"a": visit("a", 10.0), "b": visit("b", 2.0)}, 3)
    assert seen == ["a0", "b0", "b1", "a1", "a2", "b2"]
    assert rounds == [{"a": 10.0, "b": 2.0}] * 3


def test_summary_lists_every_measurement_and_each_ratio_median(tmp_path: Path) -> None:
    run = Run(["faq_match"], Plan(), tmp_path / "2026-11-29", [])
    run.add("faq_match", "triton", "perf_analyzer", Point(8, 2100.0, 3.2, 9.8))
    run.add("faq_match", "triton", "locust", Point(32, 1700.5, 15, 37, failures=2))
    for number, ratio in enumerate((21.0, 25.0, 23.0)):
        run.add("faq_match", "round: Triton ÷ azmlinfsrv (a)", "locust", Point(number, ratio, 0, 0))
    text = summary(run)
    assert "| faq_match | triton | perf_analyzer | 8 | 2,100.0 | 3.2 | 9.8 | 0 | 0 |" in text
    assert "| faq_match | triton | locust | 32 | 1,700.5 | 15.0 | 37.0 | 2 | 0 |" in text
    assert "Triton ÷ azmlinfsrv (a): median **23.00** (21.00, 25.00, 23.00)" in text
    assert "round" not in text.split("Interleaved")[0]  # rounds are not table rows


def test_quick_is_smaller_in_every_dimension() -> None:
    full = Plan()
    assert QUICK.window < full.window and QUICK.image_window < full.image_window
    assert QUICK.seconds < full.seconds and QUICK.rounds < full.rounds


def test_tune_config_points_model_analyzer_at_the_local_server(tmp_path: Path, monkeypatch) -> None:
    import export.build_repository
    from perf import tune

    monkeypatch.setattr(export.build_repository, "build", lambda *a, **k: [])
    config = tune.config("faq_classifier", tmp_path, 16, 2)
    assert config["triton_launch_mode"] == "local"
    assert Path(config["triton_server_path"]).name == "tritonserver"
    assert config["triton_server_flags"]["backend-config"].startswith("python,shm-region-prefix-name=tune_")
    assert config["profile_models"] == {"faq_classifier": {"cpu_only": True}}


def test_requests_a_queue_policy_shed_are_counted_apart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = (DATA / "locust_stats.csv").read_text().splitlines()
    shed = "POST,triton image shed,50,50,2,2.5,1,9,0,25.0,25.0,2,2,2,2,3,3,4,5,9,9,9"
    (tmp_path / "v_stats.csv").write_text("\n".join([lines[0], lines[1], shed, lines[2]]) + "\n")
    monkeypatch.setattr(perf_run, "_run", lambda *a, **k: None)
    point = perf_run.locust("TritonImageUser", "http://127.0.0.1:1", 64, 5, tmp_path / "v", {})
    assert point == Point(64, 387.6321108644237, 6, 35, failures=0, shed=50)  # latency of the served only
