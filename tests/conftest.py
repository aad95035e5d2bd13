"""Session fixtures shared by the whole suite: one real Triton server for every integration test."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from export.build_repository import build
from serving.paths import REPO_ROOT
from serving.triton import Ports, TritonServer

TEST_ARTIFACTS = REPO_ROOT / "test-artifacts"


@pytest.fixture(scope="session")
def model_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CPU model repository built from the catalog (artifacts are cached under build/)."""
    repository = tmp_path_factory.mktemp("model_repository")
    build("cpu", repository)
    return repository


@pytest.fixture(scope="session")
def triton_server(model_repository: Path) -> Iterator[TritonServer]:
    """A real tritonserver on free ports, started once per session and stopped at the end."""
    logging.getLogger("serving.triton").setLevel(logging.INFO)
    TEST_ARTIFACTS.mkdir(exist_ok=True)
    server = TritonServer(model_repository, Ports.free(), log_path=TEST_ARTIFACTS / "triton-server.log")
    with server:
        yield server
