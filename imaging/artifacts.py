"""Where the image networks' ONNX files live, and what weights they were exported with.

Each exporter writes ``<network>.onnx`` and a provenance file ``<network>.json`` next to it
(weights source, seed, framework versions). The postprocessing model reads the provenance
at load time and logs a loud warning when the weights are random, and the parity tests use
it to rebuild the very same framework model. Only the standard library is used here: the
Keras exporter imports this module inside ``.venv-tf``.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

SUBDIR = "imaging"  # under build/artifacts
RANDOM = "random"

log = logging.getLogger(__name__)


def onnx_path(artifacts_dir: Path, network: str) -> Path:
    return Path(artifacts_dir) / SUBDIR / f"{network}.onnx"


def provenance_path(artifacts_dir: Path, network: str) -> Path:
    return Path(artifacts_dir) / SUBDIR / f"{network}.json"


def random_weights_banner(network: str, remedy: str = "Re-export with --weights PATH") -> str:
    """The message every place that touches a random-weight network repeats."""
    return (
        f"!!! {network}: RANDOM WEIGHTS - its predictions are MEANINGLESS. "
        f"{remedy} to serve a real classifier (see docs/images.md). !!!"
    )


def write_provenance(artifacts_dir: Path, network: str, info: dict[str, Any]) -> Path:
    path = provenance_path(artifacts_dir, network)
    atomic_write_bytes(path, (json.dumps({"network": network, **info}, indent=2) + "\n").encode())
    return path


def read_provenance(artifacts_dir: Path, network: str) -> dict[str, Any]:
    return json.loads(provenance_path(artifacts_dir, network).read_text())


def is_random(info: dict[str, Any]) -> bool:
    return info.get("weights") == RANDOM


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write via a temporary file and rename: an interrupted export never leaves half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; the server (maybe another user) reads it
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def temporary_sibling(path: Path) -> Path:
    """A temporary path next to ``path`` for tools that write files themselves (then ``os.replace``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=path.suffix)
    os.close(fd)
    os.chmod(tmp, 0o644)
    return Path(tmp)
