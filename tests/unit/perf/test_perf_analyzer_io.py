"""perf_analyzer input-data JSON, command line, CSV and log parsing (no server needed)."""

from __future__ import annotations

import base64
import json
import struct
from pathlib import Path

import pytest

from perf import perf_analyzer
from perf.perf_analyzer import PerfAnalyzerError, PerfAnalyzerRun

DATA = Path(__file__).parent / "data"


def test_serialize_bytes_tensor_is_length_prefixed() -> None:
    raw = perf_analyzer.serialize_bytes_tensor([b"abc", b""])
    assert raw == struct.pack("<I", 3) + b"abc" + struct.pack("<I", 0)


def test_image_input_data_is_b64_of_the_serialized_tensor(tmp_path: Path) -> None:
    jpeg = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 3
    path = perf_analyzer.image_input_data(tmp_path / "in.json", "IMAGE", [jpeg, b"\x89PNG..."])
    doc = json.loads(path.read_text())
    assert len(doc["data"]) == 2
    first = doc["data"][0]["IMAGE"]
    assert first["shape"] == [1]
    decoded = base64.b64decode(first["b64"])
    (length,) = struct.unpack("<I", decoded[:4])
    assert length == len(jpeg) and decoded[4:] == jpeg


def test_text_input_data_keeps_every_question_in_order(tmp_path: Path) -> None:
    questions = ["how do I clone an object?", "remove item from array", "ünïcode ok"]
    path = perf_analyzer.text_input_data(tmp_path / "q.json", "TEXT", questions)
    doc = json.loads(path.read_text(encoding="utf-8"))
    assert [step["TEXT"]["content"] for step in doc["data"]] == [[q] for q in questions]
    assert all(step["TEXT"]["shape"] == [1] for step in doc["data"])


def test_input_data_refuses_empty() -> None:
    with pytest.raises(ValueError):
        perf_analyzer.input_data([])


def test_command_has_sweep_level_csv_and_headers(tmp_path: Path) -> None:
    run = PerfAnalyzerRun(
        model="faq_match",
        input_data=tmp_path / "q.json",
        url="example.internal:443",
        concurrency=(1, 8),
        headers={"api-key": "k"},
    )
    cmd = run.command(8, tmp_path / "out.csv", binary=Path("/bin/perf_analyzer"))
    assert cmd[0] == "/bin/perf_analyzer"
    assert cmd[cmd.index("-m") + 1] == "faq_match"
    assert cmd[cmd.index("-u") + 1] == "example.internal:443"
    assert cmd[cmd.index("--concurrency-range") + 1] == "8:8"
    assert cmd[cmd.index("-f") + 1] == str(tmp_path / "out.csv")
    assert cmd[cmd.index("--measurement-mode") + 1] == "count_windows"
    assert "--measurement-request-count" in cmd
    assert cmd[cmd.index("-H") + 1] == "api-key:k"
    assert cmd[cmd.index("-s") + 1] == "20" and cmd[cmd.index("-r") + 1] == "6"
    assert "--request-count" not in cmd  # hangs at concurrency > 1 in perf_analyzer 2.51
    lenient = run.command(8, tmp_path / "out.csv", binary=Path("/bin/pa"), lenient=True)
    assert lenient[lenient.index("-s") + 1] == "1000" and lenient[lenient.index("-r") + 1] == "3"


def test_display_command_shows_the_whole_sweep() -> None:
    run = PerfAnalyzerRun(model="m", concurrency=(1, 2, 4))
    assert "'<1,2,4>'" in run.display_command()


def test_parse_real_csv_converts_microseconds_to_ms() -> None:
    (point,) = perf_analyzer.parse_csv(DATA / "perf_analyzer_c1.csv", model="echo")
    assert point.tool == "perf_analyzer" and point.server == "triton"
    assert point.concurrency == 1
    assert point.throughput == pytest.approx(549.57)
    assert point.p50_ms == pytest.approx(1.653)
    assert point.p99_ms == pytest.approx(4.899)
    assert point.extra["server_queue_ms"] == pytest.approx(1.171)
    assert point.extra["server_compute_infer_ms"] == pytest.approx(0.245)


def test_parse_csv_stops_at_the_metrics_table(tmp_path: Path) -> None:
    text = (DATA / "perf_analyzer_c1.csv").read_text().rstrip("\n")
    path = tmp_path / "verbose.csv"
    path.write_text(text + "\n\nConcurrency,GPU Utilization\n1,0\n")
    assert len(perf_analyzer.parse_csv(path, model="echo")) == 1


def test_parse_csv_rejects_other_files(tmp_path: Path) -> None:
    path = tmp_path / "x.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(PerfAnalyzerError):
        perf_analyzer.parse_csv(path, model="m")


def test_parse_log_reads_request_count_and_average() -> None:
    found = perf_analyzer.parse_log((DATA / "perf_analyzer_c1.log").read_text())
    assert set(found) == {1}
    assert found[1]["requests"] > 0
    assert found[1]["avg_ms"] > 0


def test_parse_log_several_levels() -> None:
    text = (
        "Request concurrency: 1\n  Client: \n    Request count: 10\n    Avg latency: 2000 usec\n"
        "Request concurrency: 4\n  Client: \n    Request count: 40\n    Avg latency: 4000 usec\n"
    )
    assert perf_analyzer.parse_log(text) == {
        1: {"requests": 10, "avg_ms": 2.0},
        4: {"requests": 40, "avg_ms": 4.0},
    }


def test_environment_puts_cudart_first_when_installed() -> None:
    env = perf_analyzer.environment({"LD_LIBRARY_PATH": "/x"})
    lib = perf_analyzer.cudart_dir()
    if lib is None:
        assert env["LD_LIBRARY_PATH"] == "/x"
    else:
        assert env["LD_LIBRARY_PATH"].split(":")[:2] == [str(lib), "/x"]


FAKE_PA = """#!/bin/sh
# a stand-in for perf_analyzer: unstable unless asked to be lenient (-s 1000)
csv=""; lenient=0
while [ $# -gt 0 ]; do
  case "$1" in
    -f) csv="$2"; shift ;;
    -s) [ "$2" = "1000" ] && lenient=1; shift ;;
  esac
  shift
done
if [ $lenient = 0 ]; then echo "Failed to obtain stable measurement."; exit 2; fi
cp "%s" "$csv"
printf 'Request concurrency: 1\\n  Client: \\n    Request count: 77\\n    Avg latency: 1500 usec\\n'
"""


def test_run_level_falls_back_to_three_lenient_windows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = tmp_path / "perf_analyzer"
    fake.write_text(FAKE_PA % (DATA / "perf_analyzer_c1.csv"))
    fake.chmod(0o755)
    monkeypatch.setattr(perf_analyzer, "locate_perf_analyzer", lambda: fake)
    run = PerfAnalyzerRun(model="echo", concurrency=(1,), timeout_s=30)
    (point,) = perf_analyzer.run_level(run, 1, tmp_path / "out")
    assert point.extra["unstable"] == 1.0
    assert point.requests == 77 and point.avg_ms == pytest.approx(1.5)
    assert (tmp_path / "out" / "pa_echo_c1.log").read_text().startswith("Failed")
    strict = PerfAnalyzerRun(model="echo", concurrency=(1,), timeout_s=30, lenient_fallback=False)
    assert perf_analyzer.run_level(strict, 1, tmp_path / "out2") == []


def test_version_explains_a_missing_library(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake = tmp_path / "perf_analyzer"
    fake.write_text(
        "#!/bin/sh\necho 'error while loading shared libraries: libb64.so.0d: cannot open' >&2\nexit 127\n"
    )
    fake.chmod(0o755)
    monkeypatch.setattr(perf_analyzer, "locate_perf_analyzer", lambda: fake)
    with pytest.raises(PerfAnalyzerError, match="libb64-0d"):
        perf_analyzer.version()


def test_installed_perf_analyzer_runs() -> None:
    """The set-up installs it (tritonclient wheel, libb64-0d, the CUDA runtime wheel)."""
    assert perf_analyzer.version().startswith("Perf Analyzer Version 2.51")
