"""One small storage interface with two implementations: a local folder and Azure Blob Storage.

A store is three containers (`data`, `models`, `preds`). Every write is atomic, so a reader (or a
rerun after a crash) sees either no blob or a complete one, never a torn file:

* Local folder: write a hidden temp file in the destination folder, then `os.replace` (atomic
  rename on POSIX within one file system). A killed writer leaves only a hidden `.name.tmp-*`
  file, which `list()` never returns and `cleanup_partial()` removes. The data is not fsynced
  by default (it costs ~5-10 ms a file here, more than scoring the partition): a process kill
  cannot tear a renamed file, and after a power loss a damaged output has no readable Parquet
  footer, so the next run finds no provenance in it and scores the partition again.
  `BATCH_SCORING_FSYNC=1` fsyncs every file before the rename when durability matters more.
* Blob Storage: one `upload_blob(overwrite=True)` call. Up to `max_single_put_size` that is a
  single Put Blob request, which the service commits atomically; above it the SDK stages blocks
  and commits them with one Put Block List, which is atomic too (staged blocks are invisible
  until committed). So no temp-name-then-copy dance is needed; the run-level `_SUCCESS.json`
  marker says when a whole run finished.

Stores are described by a picklable `StoreSpec` so worker processes (local runner, Azure ML
nodes, Kubernetes pods) can each open their own clients.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from batch_scoring.schema import DATA, MODELS, PREDS

# The well-known Azurite account (public, documented by Microsoft; not a secret).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
CONNECTION_STRING_ENV = "AZURE_STORAGE_CONNECTION_STRING"
CONTAINERS = (DATA, MODELS, PREDS)


def azurite_connection_string(port: int = 10000, host: str = "127.0.0.1") -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
        f"BlobEndpoint=http://{host}:{port}/{AZURITE_ACCOUNT};"
    )


class MissingBlob(FileNotFoundError):
    """Raised by `read_bytes` for an absent blob/file, whatever the backend."""


class Container(Protocol):
    """What the pipeline needs from storage; nothing more, so both backends stay small."""

    def read_bytes(self, name: str) -> bytes: ...
    def write_bytes(self, name: str, data: bytes) -> None: ...
    def exists(self, name: str) -> bool: ...
    def list(self, prefix: str = "") -> list[str]: ...
    def delete(self, name: str) -> None: ...
    def cleanup_partial(self) -> int: ...
    def describe(self) -> str: ...


def _is_partial(name: str) -> bool:
    return Path(name).name.startswith(".") and ".tmp-" in name


class LocalContainer:
    """A folder; blob names are relative POSIX paths inside it."""

    def __init__(self, root: str | Path, fsync: bool | None = None) -> None:
        self.root = Path(root)
        self.fsync = os.environ.get("BATCH_SCORING_FSYNC") == "1" if fsync is None else fsync

    def _path(self, name: str) -> Path:
        path = (self.root / name).resolve()
        if self.root.resolve() not in path.parents:
            raise ValueError(f"blob name escapes the container: {name!r}")
        return path

    def read_bytes(self, name: str) -> bytes:
        try:
            return self._path(name).read_bytes()
        except FileNotFoundError as exc:
            raise MissingBlob(f"{self.describe()}/{name}") from exc

    def write_bytes(self, name: str, data: bytes) -> None:
        path = self._path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
        try:
            with open(tmp, "wb") as fh:
                fh.write(data)
                if self.fsync:
                    fh.flush()
                    os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            raise

    def exists(self, name: str) -> bool:
        return self._path(name).is_file()

    def list(self, prefix: str = "") -> list[str]:
        if not self.root.is_dir():
            return []
        names = []
        for dirpath, _dirs, files in os.walk(self.root):
            rel = Path(dirpath).relative_to(self.root)
            for f in files:
                name = (rel / f).as_posix() if rel != Path(".") else f
                if not _is_partial(name) and name.startswith(prefix):
                    names.append(name)
        return sorted(names)

    def delete(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(name).unlink()

    def cleanup_partial(self) -> int:
        """Remove temp files left by killed writers. Not safe while another run writes here."""
        removed = 0
        if self.root.is_dir():
            for tmp in self.root.rglob(".*.tmp-*"):
                tmp.unlink(missing_ok=True)
                removed += 1
        return removed

    def describe(self) -> str:
        return str(self.root)


TIMEOUT_ENV = "BATCH_SCORING_STORAGE_TIMEOUT_S"


def storage_timeout_s() -> float:
    """How long one Blob Storage call may take, retries included ($BATCH_SCORING_STORAGE_TIMEOUT_S,
    default 60 s). The SDK's own policy backs off 15 s, 45 s, ... and kept a run against an
    account that went away retrying for a quarter of an hour."""
    return float(os.environ.get(TIMEOUT_ENV, "60"))


class BlobContainer:
    """A Blob Storage container through azure-storage-blob's ContainerClient."""

    # Keep every output in one Put Blob request (partitions are far smaller than this).
    MAX_SINGLE_PUT = 64 * 1024 * 1024

    def __init__(self, connection_string: str, container: str, create: bool = True) -> None:
        from azure.storage.blob import ContainerClient, ExponentialRetry

        self.name = container
        budget = storage_timeout_s()
        # Three tries, 1 s then 2 s apart, each bounded: at most about the budget in all.
        per_try = max(1.0, (budget - 3) / 3)
        self.client = ContainerClient.from_connection_string(
            connection_string,
            container,
            max_single_put_size=self.MAX_SINGLE_PUT,
            retry_policy=ExponentialRetry(
                initial_backoff=1, increment_base=2, retry_total=2, random_jitter_range=0
            ),
            connection_timeout=min(10.0, per_try),
            read_timeout=per_try,
        )
        if create:
            from azure.core.exceptions import ResourceExistsError

            with contextlib.suppress(ResourceExistsError):
                self.client.create_container()

    def read_bytes(self, name: str) -> bytes:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self.client.download_blob(name, max_concurrency=1).readall()
        except ResourceNotFoundError as exc:
            raise MissingBlob(f"{self.describe()}/{name}") from exc

    def write_bytes(self, name: str, data: bytes) -> None:
        self.client.upload_blob(name, data, overwrite=True, max_concurrency=1)

    def exists(self, name: str) -> bool:
        return self.client.get_blob_client(name).exists()

    def list(self, prefix: str = "") -> list[str]:
        return sorted(self.client.list_blob_names(name_starts_with=prefix or None))

    def delete(self, name: str) -> None:
        from azure.core.exceptions import ResourceNotFoundError

        with contextlib.suppress(ResourceNotFoundError):
            self.client.delete_blob(name)

    def cleanup_partial(self) -> int:
        return 0  # uploads are atomic server-side: nothing partial can exist

    def describe(self) -> str:
        return f"blob://{self.client.account_name}/{self.name}"


@dataclass(frozen=True)
class StoreSpec:
    """Picklable description of a store, parsed from `--store`.

    * `local:PATH` (or a bare path): PATH/data, PATH/models, PATH/preds.
    * `azurite[:PORT]`: the local emulator with the well-known dev account (default port 10000).
    * `blob`: a real account; the connection string comes from `--connection-string` or
      `AZURE_STORAGE_CONNECTION_STRING` (never from the command line in CI logs).
    * `folders`: three explicit folders (how Azure ML mounts uri_folder inputs/outputs).
    """

    kind: str
    path: str = ""
    connection_string: str = field(default="", repr=False)
    prefix: str = ""
    folders: tuple[str, str, str] = ("", "", "")

    @classmethod
    def parse(cls, spec: str, connection_string: str | None = None, prefix: str = "") -> StoreSpec:
        if spec.startswith("local:"):
            return cls("local", path=spec[len("local:") :], prefix=prefix)
        if spec == "azurite" or spec.startswith("azurite:"):
            port = int(spec.split(":", 1)[1]) if ":" in spec else 10000
            return cls(
                "blob",
                path=f"azurite:{port}",
                connection_string=azurite_connection_string(port),
                prefix=prefix,
            )
        if spec == "blob":
            cs = connection_string or os.environ.get(CONNECTION_STRING_ENV, "")
            if not cs:
                raise ValueError(f"--store blob needs --connection-string or ${CONNECTION_STRING_ENV}")
            return cls("blob", path="blob", connection_string=cs, prefix=prefix)
        if ":" in spec and not spec.startswith(("/", ".")):
            raise ValueError(f"unknown store {spec!r}: use local:PATH, azurite[:PORT] or blob")
        return cls("local", path=spec, prefix=prefix)

    @classmethod
    def from_folders(cls, data: str, models: str, preds: str) -> StoreSpec:
        return cls("folders", folders=(str(data), str(models), str(preds)))

    def open(self) -> Store:
        if self.kind == "local":
            root = Path(self.path)
            return Store(*(LocalContainer(root / f"{self.prefix}{c}") for c in CONTAINERS), spec=self)
        if self.kind == "folders":
            return Store(*(LocalContainer(p) for p in self.folders), spec=self)
        if self.kind == "blob":
            return Store(
                *(BlobContainer(self.connection_string, f"{self.prefix}{c}") for c in CONTAINERS),
                spec=self,
            )
        raise ValueError(f"unknown store kind {self.kind!r}")

    def describe(self) -> str:
        if self.kind == "folders":
            return "folders:" + ",".join(self.folders)
        return f"{self.kind}:{self.path}" + (f" (prefix {self.prefix})" if self.prefix else "")


@dataclass
class Store:
    data: Container
    models: Container
    preds: Container
    spec: StoreSpec | None = None

    def containers(self) -> Iterable[Container]:
        return (self.data, self.models, self.preds)
