"""run_all's plans and baseline deployments (the parts that decide what is measured)."""

from __future__ import annotations

from perf import run_all


def test_baseline_configs_default_and_tuned_for_faq() -> None:
    default, tuned = run_all.baseline_configs(image=False, cores=2)
    assert (default.label, default.workers, default.env) == ("default", 1, {})
    assert tuned.label == "tuned" and tuned.workers == 2
    assert tuned.env["OMP_NUM_THREADS"] == "1"


def test_image_baseline_default_and_one_thread_per_worker() -> None:
    default, tuned = run_all.baseline_configs(image=True, cores=2)
    assert default.workers == 1 and default.env == {}
    assert tuned.workers == 2 and tuned.env["BASELINE_TORCH_THREADS"] == "1"
    assert [c.label for c in run_all.baseline_configs(image=False, cores=1)] == ["default"]


def test_quick_plan_is_smaller_and_bounded() -> None:
    full, quick = run_all.Plan(), run_all.Plan.quick()
    assert quick.locust_seconds < full.locust_seconds <= 60
    assert len(quick.faq_concurrency) < len(full.faq_concurrency)
    assert quick.pairwise_options and not full.pairwise_options  # the full run uses the real model
    assert all(u > 0 for u in (*full.faq_users, *full.image_users, *full.faq_baseline_users))


def test_every_baseline_has_a_script() -> None:
    from perf.baseline.server import SCRIPTS

    for baselines in run_all.BASELINES.values():
        assert set(baselines) <= set(SCRIPTS)
        assert all(SCRIPTS[b].is_file() for b in baselines)


def test_runner_notes_and_skips_a_remote_locust_target(tmp_path) -> None:
    from perf.locust_runner import LocustRun
    from perf.report import RunRecord

    record = RunRecord(started="now")
    runner = run_all.Runner(record, run_all.Plan.quick(), tmp_path)
    runner.locust(LocustRun("TritonFaqUser", "http://203.0.113.7:8000", "faq_match", "triton"))
    assert record.points == [] and record.commands == []
    assert "not a loopback address" in record.notes[0]
    assert not list(tmp_path.iterdir())


def test_paired_rounds_measure_every_candidate_every_round(tmp_path, monkeypatch) -> None:
    import dataclasses
    from pathlib import Path

    from perf.report import PAIRED, RunRecord
    from perf.results import LoadPoint

    record = RunRecord(started="now")
    plan = dataclasses.replace(
        run_all.Plan.quick(), paired_rounds=3, paired_batches=(4, 8), paired_concurrency=(8, 16)
    )
    runner = run_all.Runner(record, plan, tmp_path)
    raw_calls, pa_calls = [], []

    def fake_raw(network, specs, photos, plan, batches=None, seconds=None):
        raw_calls.append((network, batches))
        return [
            LoadPoint(network, "onnxruntime", "inprocess", b, 10.0, 1.0, 2.0, label=f"batch {b}")
            for b in batches
        ]

    def fake_sweep(run, out_dir: Path):
        pa_calls.append(run.concurrency)
        return [LoadPoint("ens", "triton", "perf_analyzer", c, 9.0, 1.0, 2.0) for c in run.concurrency]

    monkeypatch.setattr(run_all, "_raw_ort", fake_raw)
    monkeypatch.setattr(run_all.perf_analyzer, "run_sweep", fake_sweep)
    run_all._paired(runner, "ens", "net", {}, [], "localhost:1", data=tmp_path / "in.json")

    assert raw_calls == [("net", (4, 8))] * 3
    assert pa_calls == [(8, 16)] * 3  # run_sweep measures each level on its own
    rounds = sorted({int(p.extra["round"]) for p in record.points})
    assert rounds == [0, 1, 2] and len(record.points) == 3 * (2 + 2)
    assert all(p.label.startswith(PAIRED) for p in record.points)


def _fake_paired_faq(tmp_path, monkeypatch, steals=None, **plan_changes):
    """Run ``_paired_faq`` against fake servers; ``steals`` gives each visit's steal in turn."""
    import dataclasses

    from perf.report import RunRecord
    from perf.results import LoadPoint

    started, stopped, visits = [], [], []
    steals = iter(steals or [])

    class FakeAzml:
        def __init__(self, script, model_dir, workers, env, log_path) -> None:
            self.workers = workers
            self.url = f"http://127.0.0.1:{5000 + workers}"

        def start(self) -> None:
            started.append(self.workers)

        def stop(self) -> None:
            stopped.append(self.workers)

    def fake_locust(run, out_dir):
        visits.append((run.server, run.label, run.users))
        steal = next(steals, None)
        return LoadPoint(
            run.model,
            run.server,
            "locust",
            run.users,
            100.0,
            1.0,
            2.0,
            requests=10,
            label=run.label,
            extra={} if steal is None else {"steal": steal},
        )

    monkeypatch.setattr(run_all, "AzmlServer", FakeAzml)
    monkeypatch.setattr(run_all, "run_locust", fake_locust)
    monkeypatch.setattr(run_all.payloads, "warm_up", lambda url, bodies, count: count)
    monkeypatch.setattr(run_all.payloads, "azml_bodies", lambda kind, wl: [])
    monkeypatch.setattr(run_all.os, "cpu_count", lambda: 2)
    record = RunRecord(started="now")
    plan = dataclasses.replace(run_all.Plan(), **plan_changes)
    runner = run_all.Runner(record, plan, tmp_path)
    run_all._paired_faq(runner, "http://127.0.0.1:8000", tmp_path, {}, tmp_path / "w.json")
    return record, started, stopped, visits


def test_paired_faq_visits_triton_and_every_baseline_deployment_in_turn(tmp_path, monkeypatch) -> None:
    record, started, stopped, visits = _fake_paired_faq(tmp_path, monkeypatch, faq_paired_rounds=2)
    assert started == [1, 2] and sorted(stopped) == [1, 2]  # default (1 worker) and tuned (2)
    first = [("triton", "paired", 32), ("azmlinfsrv", "paired-default", 4), ("azmlinfsrv", "paired-tuned", 4)]
    assert visits == first + first[::-1]
    assert [int(p.extra["round"]) for p in record.points] == [0, 0, 0, 1, 1, 1]


def test_paired_faq_adds_rounds_until_enough_are_calm(tmp_path, monkeypatch) -> None:
    calm, noisy = [0.02, 0.03, 0.01], [0.02, 0.55, 0.01]  # one visit of three lost half the VM
    record, _, _, _ = _fake_paired_faq(
        tmp_path, monkeypatch, noisy + calm + noisy + calm, faq_paired_rounds=2, faq_paired_max_rounds=9
    )
    assert max(int(p.extra["round"]) for p in record.points) == 3  # 4 rounds: 2 calm, 2 not


def test_paired_faq_stops_at_the_round_limit_on_a_noisy_host(tmp_path, monkeypatch) -> None:
    record, _, _, _ = _fake_paired_faq(
        tmp_path, monkeypatch, [0.6] * 30, faq_paired_rounds=2, faq_paired_max_rounds=3
    )
    assert len(record.points) == 9  # three rounds of three visits, none calm


class _DyingServer:
    """Stands in for TritonServer: the next ``deaths`` measurements kill it; fresh ports on restart."""

    def __init__(self, log_path, deaths: int) -> None:
        self.log_path, self.deaths, self.dead = log_path, deaths, False
        self.port, self.restarts = 1000, 0
        log_path.write_text("I1122 an earlier start, with an old Signal (6) received. that must not show\n")

    @property
    def http_url(self) -> str:
        return f"localhost:{self.port}"

    def exit_code(self) -> int | None:
        return -11 if self.dead else None

    def serve_one(self) -> None:
        if self.deaths:
            self.deaths, self.dead = self.deaths - 1, True
            with open(self.log_path, "a") as log:
                log.write("Signal (11) received.\n 0# 0x00 in tritonserver\n")
                log.write("  what():  boost::interprocess::lock_exception\n")

    def restart(self, timeout: float) -> None:
        self.port, self.restarts, self.dead = self.port + 1, self.restarts + 1, False


def _stage(tmp_path, deaths: int, server: bool = True) -> tuple[run_all.Runner, list[str]]:
    """Run one stage whose measurement records a point labelled with the URL it was given."""
    from perf.report import RunRecord
    from perf.results import LoadPoint

    runner = run_all.Runner(RunRecord(started="now"), run_all.Plan.quick(), tmp_path)
    fake = _DyingServer(tmp_path / "triton.log", deaths)
    runner.server, runner.url = (fake, fake.http_url) if server else (None, "gpu-host:8000")  # type: ignore[assignment]
    urls: list[str] = []

    def measure(url: str) -> None:
        urls.append(url)
        runner.add(LoadPoint("m", "triton", "locust", 1, 10.0, 1.0, 2.0, label=url))
        fake.serve_one()

    runner.stage("locust on `m`", measure)
    return runner, urls


def test_stage_with_a_healthy_server_measures_once(tmp_path) -> None:
    runner, urls = _stage(tmp_path, deaths=0)
    assert urls == ["localhost:1000"] and runner.record.notes == []
    assert [p.label for p in runner.record.points] == ["localhost:1000"]


def test_stage_restarts_a_dead_triton_and_keeps_only_the_repeat(tmp_path) -> None:
    from perf.results import load_points

    runner, urls = _stage(tmp_path, deaths=1)
    assert urls == ["localhost:1000", "localhost:1001"]
    assert runner.url == "localhost:1001" and runner.server.restarts == 1
    assert [p.label for p in runner.record.points] == ["localhost:1001"]
    assert [p.label for p in load_points(tmp_path / "points.jsonl")] == ["localhost:1001"]
    (note,) = runner.record.notes
    assert note.startswith("Triton died during locust on `m` at ")
    assert "killed by SIGSEGV: Signal (11) received.; what():  boost::interprocess::lock_exception" in note
    assert "Signal (6)" not in note  # only what the log gained during this stage
    assert note.endswith("restarted and the stage measured again.")


def test_stage_gives_up_after_two_deaths_and_leaves_a_running_server(tmp_path) -> None:
    runner, urls = _stage(tmp_path, deaths=2)
    assert len(urls) == 2 and runner.record.points == []
    assert runner.server.restarts == 2 and not runner.server.dead and runner.url == "localhost:1002"
    assert len(runner.record.notes) == 2 and "the stage has no figures" in runner.record.notes[1]


def test_stage_never_restarts_a_server_it_did_not_start(tmp_path) -> None:
    runner, urls = _stage(tmp_path, deaths=1, server=False)
    assert urls == ["gpu-host:8000"] and runner.record.notes == []
    assert len(runner.record.points) == 1
