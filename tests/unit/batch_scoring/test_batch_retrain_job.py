"""The retraining job's entry point: the same steps as the CronJob, and secrets that cannot be
had end it at once (or within its timeout) with a clear reason."""

from __future__ import annotations

import logging
import socket
import time
from pathlib import Path

import pytest
import yaml

from batch_scoring import retrain_job

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def no_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in (*retrain_job.SECRETS, "KEY_VAULT_URL"):
        monkeypatch.delenv(name, raising=False)


def test_the_steps_are_the_cronjobs() -> None:
    spec = yaml.safe_load((REPO / "k8s" / "batch" / "retrain.yaml").read_text())
    pod = spec["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    cronjob = [c["command"][3:] + c["args"] for c in (*pod["initContainers"], *pod["containers"])]
    assert retrain_job.steps(7, "blob", 2) == cronjob


def test_without_the_secrets_or_a_vault_it_says_which_are_missing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        assert retrain_job.main(["--store", "blob"]) == 2
    assert "SENSOR_DB_URL, AZURE_STORAGE_CONNECTION_STRING not set and no --key-vault" in caplog.text


def test_a_local_store_needs_no_storage_secret(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR):
        assert retrain_job.main(["--store", "local:/nowhere"]) == 2
    assert "SENSOR_DB_URL not set" in caplog.text and "AZURE_STORAGE" not in caplog.text


def test_a_vault_that_never_answers_ends_the_job_within_its_timeout(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as silent:  # accepts connections (the kernel does), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        vault = f"https://127.0.0.1:{silent.getsockname()[1]}/"
        start = time.monotonic()
        with caplog.at_level(logging.ERROR):
            code = retrain_job.main(["--key-vault", vault, "--timeout", "1"])
        took = time.monotonic() - start
    assert code == 2 and took < 10, took
    assert f"cannot read secret(s) from {vault}" in caplog.text
