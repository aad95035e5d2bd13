"""Well-known folders of a checkout, so that no module guesses them."""

from __future__ import annotations

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = REPO_ROOT / "build"
ARTIFACTS_DIR = BUILD_DIR / "artifacts"
MODEL_REPOSITORY_DIR = REPO_ROOT / "model_repository"
ENSEMBLES_DIR = REPO_ROOT / "ensembles"
CONFIGS_DIR = REPO_ROOT / "deploy" / "configs"  # committed copies of every rendered config.pbtxt
RUN_DIR = REPO_ROOT / ".run"
