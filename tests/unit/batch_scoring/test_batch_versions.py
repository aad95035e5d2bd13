"""Model versions: a training writes a new immutable version and moves the pointer only past
the gate; a failed training changes nothing; a scoring run keeps the version it started with;
a rollback is one write."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pyarrow.parquet as pq
from typer.testing import CliRunner

from batch_scoring import score, versions
from batch_scoring.cli import app
from batch_scoring.model import PRESETS
from batch_scoring.score import PROVENANCE_KEY
from batch_scoring.storage import StoreSpec
from batch_scoring.train import train_all


def files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_each_training_is_a_new_version_and_older_ones_stay_as_they_were(store_root: Path) -> None:
    spec = StoreSpec.parse(f"local:{store_root}")
    models = spec.open().models
    first = versions.serving(models)
    before = files(store_root / "models" / f"v={first['version']}")
    second = train_all(spec, replace(PRESETS["default"], nu=0.02), progress=False, tolerance=1.0)
    assert second["gate"]["passed"], second["gate"]
    assert versions.serving(models)["version"] == second["version"] != first["version"]
    assert second["previous"] == first["version"]
    assert all(e["blob"].startswith(f"v={second['version']}/") for e in second["models"].values())
    assert files(store_root / "models" / f"v={first['version']}") == before  # untouched
    assert versions.versions(models) == sorted([first["version"], second["version"]])

    res = CliRunner().invoke(app, ["models", "rollback", "--store", f"local:{store_root}"])
    assert res.exit_code == 0 and first["version"] in res.output, res.output
    assert versions.serving(models)["version"] == first["version"]
    listed = CliRunner().invoke(app, ["models", "list", "--store", f"local:{store_root}"]).output
    assert f"* {first['version']}" in listed and f"  {second['version']}" in listed


def test_a_failed_training_never_replaces_the_serving_version(store_root: Path) -> None:
    pointer = (store_root / "models" / "manifest.json").read_bytes()
    res = CliRunner().invoke(app, ["train", "--store", f"local:{store_root}", "--nu", "5", "--no-progress"])
    assert res.exit_code == 1 and "6 series failed to train" in res.output, res.output
    assert (store_root / "models" / "manifest.json").read_bytes() == pointer
    refused = versions.versions(StoreSpec.parse(f"local:{store_root}").open().models)[-1]
    kept = json.loads((store_root / "models" / f"v={refused}" / "manifest.json").read_text())
    assert kept["gate"]["passed"] is False and kept["models"] == {}  # kept for the record, not served


def test_a_scoring_run_finishes_on_the_version_it_started_with(store_root: Path) -> None:
    spec = StoreSpec.parse(f"local:{store_root}")
    started_with = versions.serving(spec.open().models)
    score.init(["--store", f"local:{store_root}"])  # reads the pointer once
    newer = train_all(
        spec, replace(PRESETS["default"], nu=0.02), progress=False, tolerance=1.0
    )  # lands mid-run
    assert newer["gate"]["passed"] and versions.serving(spec.open().models)["version"] == newer["version"]
    done = score.run(["D000/S00", "D001/S02"])
    assert list(done["status"]) == ["scored", "scored"]
    for key in ("D000/S00", "D001/S02"):
        info = json.loads(pq.read_schema(store_root / "preds" / f"{key}.parquet").metadata[PROVENANCE_KEY])
        assert info["model_sha256"] == started_with["models"][key]["sha256"]
        assert info["model_sha256"] != newer["models"][key]["sha256"]
