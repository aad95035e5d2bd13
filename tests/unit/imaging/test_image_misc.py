"""Samples, the Keras exporter's venv boundary and the client's argument handling."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from export import resnet_keras
from imaging import client
from imaging.samples import SAMPLES, all_samples, sample_bytes, sample_path


def test_every_sample_photo_ships_in_an_installed_package() -> None:
    paths = all_samples()
    assert set(paths) == set(SAMPLES)
    assert all(path.is_file() and path.stat().st_size > 10_000 for path in paths.values())
    assert sample_bytes("coffee")[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(KeyError, match="unknown sample"):
        sample_path("nope")


def test_keras_export_without_the_tf_venv_fails_clearly(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(resnet_keras.TF_PYTHON_ENV, str(tmp_path / "missing" / "python"))
    with pytest.raises(resnet_keras.TensorFlowVenvError, match="TensorFlow venv is missing"):
        resnet_keras.export(tmp_path)


def test_keras_subprocess_environment_points_at_the_checkout() -> None:
    env = resnet_keras.tf_environment()
    assert str(resnet_keras.REPO_ROOT) in env["PYTHONPATH"].split(":")
    assert env["CUDA_VISIBLE_DEVICES"] == ""


def test_client_cli_validates_arguments() -> None:
    runner = CliRunner()
    result = runner.invoke(client.app, [])
    assert result.exit_code != 0 and "give image files" in result.output
    result = runner.invoke(client.app, ["--model", "alexnet", str(sample_path("coffee"))])
    assert result.exit_code != 0 and "--model must be one of" in result.output


def test_client_reports_an_unreachable_server() -> None:
    from serving.triton import free_ports

    (port,) = free_ports(1)
    args = ["--url", f"localhost:{port}", "--retry-s", "0", str(sample_path("coffee"))]
    result = CliRunner().invoke(client.app, args)
    assert result.exit_code == 2
    assert "cannot reach" in result.output


def test_classify_rejects_batches_above_the_servers_limit() -> None:
    from serving.client import Endpoint

    with pytest.raises(ValueError, match="batch_size"):
        client.classify(Endpoint(), "efficientnet_lite0", [b"x"], batch_size=9)
