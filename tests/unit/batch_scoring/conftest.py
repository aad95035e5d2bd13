"""Fixtures for batch_scoring unit tests: one small trained store per session, copied per test."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from batch_scoring.generate import GenSpec, generate
from batch_scoring.model import PRESETS
from batch_scoring.storage import StoreSpec
from batch_scoring.train import train_all

# Small but real: 2 devices x 3 sensors x 720 readings, default model config.
SMALL = GenSpec(devices=2, sensors=3, readings=720, seed=3)


@pytest.fixture(scope="session")
def trained_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("batch_trained")
    spec = StoreSpec.parse(f"local:{root}")
    generate(spec, SMALL, progress=False)
    manifest = train_all(spec, PRESETS["default"], workers=1, progress=False)
    assert not manifest["errors"], manifest["errors"]
    return root


@pytest.fixture
def store_root(trained_root: Path, tmp_path: Path) -> Path:
    """A private copy of the trained store (data + models, no predictions yet)."""
    dst = tmp_path / "store"
    shutil.copytree(trained_root, dst)
    return dst
