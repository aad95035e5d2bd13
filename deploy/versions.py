"""Which Triton the deployment targets, and how a Triton version maps to its container tag.

The local server (``nvidia-pytriton==0.7.0``) is Triton 2.51.0; the official container of the
same release is ``nvcr.io/nvidia/tritonserver:24.10-py3``. NGC releases are monthly and the
server's minor version goes up by one each month (2.42.0 = 24.01, 2.51.0 = 24.10), so the
tag follows from the version; the integration test asks the running server its version.
"""

from __future__ import annotations

TRITON_VERSION = "2.51.0"
TRITON_IMAGE_REPOSITORY = "nvcr.io/nvidia/tritonserver"
_ANCHOR = (51, 2024, 10)  # Triton 2.51 shipped as 24.10


def container_release(version: str) -> str:
    """``"2.51.0"`` -> ``"24.10"`` (for the 2.x monthly releases)."""
    major, minor = (int(part) for part in version.split(".")[:2])
    if major != 2 or minor < 19:
        raise ValueError(f"no monthly container mapping for Triton {version}")
    months = (_ANCHOR[1] * 12 + _ANCHOR[2] - 1) + (minor - _ANCHOR[0])
    year, month = divmod(months, 12)
    return f"{year % 100:02d}.{month + 1:02d}"


def container_image(version: str = TRITON_VERSION) -> str:
    return f"{TRITON_IMAGE_REPOSITORY}:{container_release(version)}-py3"
