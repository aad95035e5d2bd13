"""Well-known folders of a checkout, so that no module guesses them."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = REPO_ROOT / "build"
ARTIFACTS_DIR = BUILD_DIR / "artifacts"
MODEL_REPOSITORY_DIR = REPO_ROOT / "model_repository"
ENSEMBLES_DIR = REPO_ROOT / "ensembles"
CONFIGS_DIR = REPO_ROOT / "deploy" / "configs"  # committed copies of every rendered config.pbtxt
# State, logs and the admin key of `make serve`; another folder runs a second stack beside it
# (the soak benchmark does).
RUN_DIR = Path(os.environ.get("TRITON_STACK_RUN_DIR") or REPO_ROOT / ".run")
STATE_FILE = RUN_DIR / "triton.json"  # the running `serve`: pids, ports, repository, admin key (0600)


def write_state(fields: dict, path: Path = STATE_FILE) -> None:
    """Replace the state file in one step, so that a reader sees the old state or the new one,
    never half of it (the supervisor rewrites it at every restart); owner-only, as it holds the
    admin key (``mkstemp`` creates it 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, written = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(handle, "w") as out:
        json.dump(fields, out)
    os.replace(written, path)


def read_state(path: Path = STATE_FILE) -> dict | None:
    """The running ``serve``'s state, or None when none is recorded."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def checkout_files() -> list[Path]:
    """The files of this checkout that git tracks or would track (no venv, build or cache)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [REPO_ROOT / name for name in listed.split("\0") if name and (REPO_ROOT / name).is_file()]
