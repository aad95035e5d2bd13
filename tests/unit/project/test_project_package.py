"""``pip install .`` gives the project's own packages and declares everything they import."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from serving.paths import REPO_ROOT, checkout_files

PACKAGES = ("serving", "faq", "imaging", "export", "ensembles", "batch_scoring", "perf", "webapp", "deploy")
# Imported only where they exist: inside Triton's Python stub, in .venv-tf, on a GPU machine.
NOT_FROM_PYPI = {"triton_python_backend_utils", "tensorflow", "keras", "tf2onnx", "tensorrt"}


def _project() -> dict:
    return tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]


def _declared() -> set[str]:
    project = _project()
    names = [
        *project["dependencies"],
        *(d for extra in project["optional-dependencies"].values() for d in extra),
    ]
    return {re.split(r"[\[=<>]", name)[0].lower().replace("_", "-") for name in names}


def _third_party_imports() -> dict[str, set[Path]]:
    found: dict[str, set[Path]] = {}
    for package in PACKAGES:
        for file in (REPO_ROOT / package).rglob("*.py"):
            if "node_modules" in file.parts:
                continue
            for node in ast.walk(ast.parse(file.read_text(), filename=str(file))):
                if isinstance(node, ast.Import):
                    modules = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                    modules = [node.module]
                else:
                    continue
                for module in modules:
                    top = module.split(".")[0]
                    if top in sys.stdlib_module_names or top in PACKAGES or top in NOT_FROM_PYPI:
                        continue
                    found.setdefault(top, set()).add(file.relative_to(REPO_ROOT))
    return found


def test_every_third_party_import_is_declared() -> None:
    distributions = importlib.metadata.packages_distributions()
    declared = _declared()
    missing = {}
    for top, files in _third_party_imports().items():
        candidates = {d.lower().replace("_", "-") for d in distributions.get(top, [top])}
        if not candidates & declared:
            missing[top] = sorted(str(f) for f in files)[:3]
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def test_test_and_lint_tools_are_extras_not_runtime_dependencies() -> None:
    core = {re.split(r"[\[=]", d)[0] for d in _project()["dependencies"]}
    assert not core & {"pytest", "ruff", "playwright", "locust", "torch", "nvidia-pytriton"}
    assert set(_project()["optional-dependencies"]) == {
        "serve",
        "export",
        "batch",
        "azure",
        "bench",
        "webapp",
        "dev",
    }


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    """The wheel of the files git would commit, built in a copy (no stale build/ inside it)."""
    source, out = tmp_path_factory.mktemp("source"), tmp_path_factory.mktemp("wheel")
    for path in checkout_files():
        copy = source / path.relative_to(REPO_ROOT)
        copy.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, copy)
    pip = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation"]
    subprocess.run([*pip, str(source), "-w", str(out)], check=True, timeout=300)
    (path,) = out.glob("*.whl")
    return zipfile.ZipFile(path)


def test_the_wheel_holds_only_the_project_packages(wheel: zipfile.ZipFile) -> None:
    names = wheel.namelist()
    tops = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert tops == set(PACKAGES)
    assert not [
        n for n in names if "node_modules" in n or n.startswith(("model_repository/", "build/", "tests/"))
    ]
    assert "faq/datasets/stackoverflow_js/orig-q.tsv.gz" in names  # the data the model trains on
    assert "imaging/data/warmup_image.bin" in names  # the warm-up the image steps load


def test_console_scripts_are_named_after_the_project(wheel: zipfile.ZipFile) -> None:
    (entry_points,) = [n for n in wheel.namelist() if n.endswith("entry_points.txt")]
    scripts = [
        line.split("=")[0].strip() for line in wheel.read(entry_points).decode().splitlines() if "=" in line
    ]
    assert scripts and all(name.startswith("triton-stack") for name in scripts)


def _imports_of(package: str) -> dict[str, set[str]]:
    """Top-level project packages imported by each file of ``package`` (at any depth)."""
    found: dict[str, set[str]] = {}
    for file in (REPO_ROOT / package).rglob("*.py"):
        for node in ast.walk(ast.parse(file.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.setdefault(str(file.relative_to(REPO_ROOT)), set()).add(node.module.split(".")[0])
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    found.setdefault(str(file.relative_to(REPO_ROOT)), set()).add(alias.name.split(".")[0])
    return found


def test_nothing_outside_perf_imports_perf() -> None:
    offenders = [f for p in PACKAGES if p != "perf" for f, tops in _imports_of(p).items() if "perf" in tops]
    assert not offenders, offenders


def test_serving_reaches_the_use_cases_only_through_the_catalogue() -> None:
    use_cases = {"faq", "imaging", "batch_scoring", "webapp", "export", "deploy"}
    offenders = [
        f for f, tops in _imports_of("serving").items() if tops & use_cases and f != "serving/catalog.py"
    ]
    assert not offenders, offenders
