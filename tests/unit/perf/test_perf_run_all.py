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
