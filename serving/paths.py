"""Well-known folders of a checkout, so that no module guesses them."""

from __future__ import annotations

import os
import subprocess
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


def checkout_files() -> list[Path]:
    """The files of this checkout that git tracks or would track (no venv, build or cache)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return [REPO_ROOT / name for name in listed.split("\0") if name and (REPO_ROOT / name).is_file()]
