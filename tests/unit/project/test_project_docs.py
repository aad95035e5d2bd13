"""Every repository path and make target named in the docs, the Dockerfile and docstrings exists."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from serving.paths import REPO_ROOT, checkout_files

# Made by a build or a run, never committed: a reference to them cannot be checked here.
GENERATED = (
    "build/",
    ".venv",
    ".run/",
    "perf/out",
    "test-artifacts",
    "model_repository/",
    "node_modules",
    "batch_scoring/azurite/data",
)
TOP_LEVEL = {p.name for p in REPO_ROOT.iterdir() if not p.name.startswith(".git")}
PATH_RE = re.compile(r"`{1,2}([A-Za-z0-9_.][\w./-]*)`{1,2}")
LINK_RE = re.compile(r"\]\(([^)\s]+)\)")
MAKE_RE = re.compile(r"(?:`|^|\$\(MAKE\) )make ([a-z][a-z0-9-]+)", re.M)


def _files(suffix: str) -> list[Path]:
    return [path for path in checkout_files() if path.name.endswith(suffix)]


def _markdown() -> list[Path]:
    return _files(".md")


def _python() -> list[Path]:
    return [p for p in _files(".py") if p.relative_to(REPO_ROOT).parts[0] != "tests"]


def _docstrings(file: Path) -> str:
    tree = ast.parse(file.read_text())
    nodes = [tree, *(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef))]
    return "\n".join(ast.get_docstring(n) or "" for n in nodes)


def _repo_path(token: str) -> bool:
    """A token that names a file or folder of this repository (not a module, URL or glob)."""
    if "*" in token or "://" in token or token.startswith(GENERATED):
        return False
    first = token.split("/")[0]
    return first in TOP_LEVEL and ("/" in token or "." in token)


def _missing_paths(text: str, base: Path) -> list[str]:
    missing = []
    for token in PATH_RE.findall(text):
        token = token.rstrip(".,:")
        if _repo_path(token) and not (REPO_ROOT / token).exists():
            missing.append(token)
    for target in LINK_RE.findall(text):
        target = target.split("#")[0]
        if not target or target.startswith(("http:", "https:", "mailto:")):
            continue
        if not (base / target).exists():
            missing.append(target)
    return missing


def test_paths_in_markdown_exist() -> None:
    missing = {}
    for file in _markdown():
        found = _missing_paths(file.read_text(), file.parent)
        if found:
            missing[str(file.relative_to(REPO_ROOT))] = found
    assert not missing, missing


def test_paths_in_docstrings_exist() -> None:
    missing = {}
    for file in _python():
        found = _missing_paths(_docstrings(file), file.parent)
        if found:
            missing[str(file.relative_to(REPO_ROOT))] = found
    assert not missing, missing


def test_dockerfiles_copy_what_exists() -> None:
    for dockerfile in (REPO_ROOT / "deploy" / "Dockerfile", REPO_ROOT / "batch_scoring" / "Dockerfile"):
        for line in dockerfile.read_text().splitlines():
            if line.startswith("COPY") and "--from" not in line:
                for source in line.split()[1:-1]:
                    if not source.startswith(("build/", "model_repository")):
                        assert list(REPO_ROOT.glob(source)), f"{dockerfile.name}: {source}"


def test_make_targets_named_anywhere_exist() -> None:
    targets = set(re.findall(r"^([a-zA-Z0-9_-]+):", (REPO_ROOT / "Makefile").read_text(), flags=re.M))
    named = {}
    for file in _markdown():
        named.update({t: file for t in MAKE_RE.findall(file.read_text())})
    for file in _python():
        named.update({t: file for t in MAKE_RE.findall(_docstrings(file))})
    unknown = {t: str(f.relative_to(REPO_ROOT)) for t, f in named.items() if t not in targets}
    assert not unknown, unknown
