"""The direct dependencies in pyproject.toml and the lock file installed by setup must agree."""

from __future__ import annotations

import re
import tomllib

from serving.paths import REPO_ROOT


def _lock() -> dict[str, str]:
    pins = {}
    for line in (REPO_ROOT / "requirements" / "serving.lock").read_text().splitlines():
        if "==" in line:
            name, version = line.strip().split("==")
            pins[name.lower()] = version
    return pins


def test_every_direct_dependency_is_pinned_to_the_locked_version() -> None:
    deps = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    lock = _lock()
    mismatched = []
    for dep in deps:
        assert "==" in dep, f"{dep} is not pinned"
        name, version = dep.split("==")
        name = re.sub(r"\[.*\]", "", name).lower()
        if lock.get(name) != version:
            mismatched.append((name, version, lock.get(name)))
    assert not mismatched, f"pyproject vs requirements/serving.lock: {mismatched}"


def test_lock_pins_numpy_below_2_for_the_python_backend() -> None:
    assert _lock()["numpy"].startswith("1.")


def test_every_make_target_in_the_readme_exists() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    targets = set(re.findall(r"^([a-zA-Z0-9_-]+):", makefile, flags=re.M))
    readme = (REPO_ROOT / "README.md").read_text()
    used = set(re.findall(r"\bmake ([a-z][a-z0-9-]+)", readme))
    assert used, "the README names no make target"
    assert used <= targets, f"README names unknown targets: {sorted(used - targets)}"
