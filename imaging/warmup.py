"""The warm-up request of the preprocessing models: one small JPEG in Triton's string format.

Triton warm-up data for a TYPE_STRING input is a file holding, per element, a 4-byte
little-endian length followed by the bytes. Zero or random data would be an invalid image
and fail the warm-up (and the model load), so a real JPEG is used. The file is small and
committed (``imaging/data/warmup_image.bin``); ``python -m imaging.warmup`` regenerates it.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
from PIL import Image

WARMUP_FILE = Path(__file__).resolve().parent / "data" / "warmup_image.bin"


def warmup_jpeg(width: int = 320, height: int = 240) -> bytes:
    """A deterministic colour-gradient JPEG (non-square, so the resize and crop paths run)."""
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 255 // width, y * 255 // height, (x + y) * 255 // (width + height)], axis=-1)
    buffer = io.BytesIO()
    Image.fromarray(pixels.astype(np.uint8), "RGB").save(buffer, format="JPEG", quality=80)
    return buffer.getvalue()


def encode_string_element(data: bytes) -> bytes:
    return struct.pack("<I", len(data)) + data


def decode_string_elements(blob: bytes) -> list[bytes]:
    """Inverse of :func:`encode_string_element` over a whole file (used by the tests)."""
    items, at = [], 0
    while at < len(blob):
        (size,) = struct.unpack_from("<I", blob, at)
        items.append(blob[at + 4 : at + 4 + size])
        at += 4 + size
    if at != len(blob):
        raise ValueError("trailing bytes in a Triton string warm-up file")
    return items


def write(path: Path = WARMUP_FILE) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_string_element(warmup_jpeg()))
    return path


if __name__ == "__main__":
    print(f"wrote {write()}")
