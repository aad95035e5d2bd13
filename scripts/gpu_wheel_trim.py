"""Trim the ``nvidia-pytriton`` wheel to one Python version so it travels to the GPU machine.

    python scripts/gpu_wheel_trim.py WHEEL 3.12

The wheel carries a backend stub for each of Python 3.8-3.13 and a 14 MB libpython for one of
them; only this Python's stub is used (``serving.triton`` copies it beside the backend). Drops
the other stubs and any bundled libpython, and rewrites the wheel's RECORD to match, in place.
"""

from __future__ import annotations

import re
import sys
import zipfile
from pathlib import Path


def unused(name: str, version: str) -> bool:
    """Whether a wheel member is a stub of another Python, or a bundled libpython."""
    stub = re.search(r"/python_backend_stubs/(\d+\.\d+)/", name)
    return bool(stub and stub.group(1) != version) or "/libpython3" in name


def trim(wheel: Path, version: str) -> int:
    """Rewrite ``wheel`` without unused members; returns how many bytes it saved."""
    before = wheel.stat().st_size
    trimmed = wheel.with_suffix(".trim")
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(trimmed, "w", zipfile.ZIP_DEFLATED) as out:
        for info in source.infolist():
            if unused(info.filename, version):
                continue
            data = source.read(info)
            if info.filename.endswith(".dist-info/RECORD"):
                rows = data.decode().splitlines(keepends=True)
                data = "".join(r for r in rows if not unused(r.split(",")[0], version)).encode()
            out.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
    trimmed.replace(wheel)
    return before - wheel.stat().st_size


if __name__ == "__main__":
    saved = trim(Path(sys.argv[1]), sys.argv[2])
    print(f"{sys.argv[1]}: {saved / 1e6:.1f} MB smaller")
