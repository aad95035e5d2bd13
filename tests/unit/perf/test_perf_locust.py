"""locust runner: loopback guard, command line, stats CSV; request bodies (without importing locust)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from perf import payloads
from perf.locust_runner import LocustError, LocustRun, check_target, is_loopback, parse_stats_csv

DATA = Path(__file__).parent / "data"


@pytest.mark.parametrize(
    "url",
    ["http://127.0.0.1:8000", "127.0.0.1:5001", "http://localhost:1", "http://[::1]:80", "http://127.1.2.3"],
)
def test_loopback_urls(url: str) -> None:
    assert is_loopback(url)
    check_target(url)


@pytest.mark.parametrize("url", ["http://10.0.0.5:8000", "https://example.com", "http://0.0.0.0:80", ""])
def test_non_loopback_is_refused(url: str) -> None:
    assert not is_loopback(url)
    with pytest.raises(LocustError):
        check_target(url)
    if url:
        check_target(url, allow_remote=True)


def test_command_is_bounded_and_headless(tmp_path: Path) -> None:
    run = LocustRun("TritonFaqUser", "http://127.0.0.1:8000", "faq_match", "triton", users=16, run_time_s=20)
    cmd = run.command(tmp_path / "p")
    assert "--headless" in cmd
    assert cmd[cmd.index("-u") + 1] == "16" and cmd[cmd.index("-r") + 1] == "16"
    assert cmd[cmd.index("-t") + 1] == "20s"
    assert cmd[cmd.index("--csv") + 1] == str(tmp_path / "p")
    assert "TritonFaqUser" in cmd
    env = run.environment()
    assert "PERF_MODEL" not in env or env["PERF_MODEL"] != ""


def test_run_refuses_remote_before_starting(tmp_path: Path) -> None:
    from perf.locust_runner import run_locust

    with pytest.raises(LocustError):
        run_locust(LocustRun("TritonFaqUser", "http://192.0.2.1:8000", "m", "triton"), tmp_path)
    assert not list(tmp_path.iterdir())


def test_parse_real_stats_csv() -> None:
    point = parse_stats_csv(DATA / "locust_stats.csv", model="echo", server="triton", users=4)
    assert point is not None
    assert point.tool == "locust" and point.concurrency == 4
    assert point.requests == 778 and point.failures == 0
    assert point.throughput == pytest.approx(387.632, rel=1e-4)
    assert point.p50_ms == 6 and point.p99_ms == 35 and point.p95_ms == 18


def test_parse_stats_with_no_requests(tmp_path: Path) -> None:
    header = (DATA / "locust_stats.csv").read_text().splitlines()[0]
    path = tmp_path / "s.csv"
    path.write_text(header + "\n,Aggregated,0,0,0,0,0,0,0,0,0,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A,N/A\n")
    point = parse_stats_csv(path, model="m", server="triton", users=1)
    assert point is not None and point.requests == 0 and point.throughput == 0


def test_triton_text_body_is_kserve_json() -> None:
    body = json.loads(payloads.triton_text_body("TEXT", "how to clone", batched=True))
    assert body == {
        "inputs": [{"name": "TEXT", "shape": [1, 1], "datatype": "BYTES", "data": ["how to clone"]}]
    }
    assert json.loads(payloads.triton_text_body("TEXT", "q", batched=False))["inputs"][0]["shape"] == [1]


def test_triton_binary_body_carries_raw_image_bytes() -> None:
    payload = b"\xff\xd8\xff\xe0" + b"x" * 1000
    body, json_size = payloads.triton_binary_body("IMAGE", payload, batched=True)
    header = json.loads(body[:json_size])
    (tensor,) = header["inputs"]
    assert tensor["name"] == "IMAGE" and tensor["shape"] == [1, 1] and tensor["datatype"] == "BYTES"
    assert tensor["parameters"]["binary_data_size"] == len(payload) + 4
    assert body[json_size + 4 :] == payload


def _faq_workload(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, questions: list[str]) -> None:
    workload = tmp_path / "w.json"
    workload.write_text(json.dumps({"questions": questions, "image_files": []}))
    monkeypatch.setenv(payloads.WORKLOAD_ENV, str(workload))
    config = {"max_batch_size": 64, "input": [{"name": "TEXT"}]}
    monkeypatch.setattr(payloads, "model_config", lambda host, model: config)


def test_triton_faq_bodies_are_what_tritonclient_sends(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _faq_workload(tmp_path, monkeypatch, ["how do i clone an object?", "naïve question"])
    bodies = payloads.triton_bodies("http://127.0.0.1:1", "faq")
    assert len(bodies) == 2
    body, headers = bodies[1]
    json_size = int(headers["Inference-Header-Content-Length"])
    header = json.loads(body[:json_size])
    assert header["parameters"] == {"binary_data_output": True}
    (tensor,) = header["inputs"]
    assert tensor["name"] == "TEXT" and tensor["shape"] == [1, 1]
    assert body[json_size + 4 :] == "naïve question".encode()
    assert headers["Accept-Encoding"] == "identity"


def test_triton_faq_json_bodies(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _faq_workload(tmp_path, monkeypatch, ["q1"])
    ((body, headers),) = payloads.triton_bodies("http://127.0.0.1:1", "faq", wire="json")
    assert json.loads(body)["inputs"][0]["data"] == ["q1"]
    assert headers == {"Content-Type": "application/json", "Accept-Encoding": "identity"}
    with pytest.raises(ValueError, match="wire format"):
        payloads.triton_bodies("http://127.0.0.1:1", "faq", wire="xml")


def test_azml_bodies_from_workload(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    image = tmp_path / "a.jpg"
    image.write_bytes(b"\xff\xd8\xff")
    workload = tmp_path / "w.json"
    workload.write_text(json.dumps({"questions": ["q1", "q2"], "image_files": [str(image)]}))
    monkeypatch.setenv(payloads.WORKLOAD_ENV, str(workload))
    faq = payloads.azml_bodies("faq")
    assert [json.loads(b) for b, _ in faq] == [{"question": "q1"}, {"question": "q2"}]
    (img, headers) = payloads.azml_bodies("image")[0]
    assert json.loads(img) == {"image": "/9j/"}
    assert headers["Content-Type"] == "application/json"
    assert headers["Accept-Encoding"] == "identity"
