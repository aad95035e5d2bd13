"""Hostile and unusual image inputs, built in memory, for the robustness tests and demos.

Each case says whether the service must classify it (an unusual but valid image: grayscale,
CMYK, alpha, animated GIF, 1x1) or reject it with a clear message (empty, garbage,
truncated, decompression bomb). Valid cases are made from a real photo, so a test can also
check that the *right* class comes out.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from typing import Literal

from PIL import Image

from imaging.samples import sample_path


@dataclass(frozen=True)
class Case:
    name: str
    data: bytes
    expect: Literal["classify", "reject"]
    reason: str  # for "reject": a phrase the error message must contain; else what it shows


def _encode(image: Image.Image, fmt: str, **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def _photo(name: str = "coffee") -> Image.Image:
    with Image.open(sample_path(name)) as image:
        return image.convert("RGB")


def png_with_declared_size(width: int, height: int) -> bytes:
    """A tiny, valid-looking PNG whose IHDR claims ``width`` x ``height`` (a decompression bomb)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def cases(photo: str = "coffee") -> list[Case]:
    """Every case of the issue's list, in a stable order."""
    rgb = _photo(photo)
    jpeg = _encode(rgb, "JPEG", quality=90)
    rgba = rgb.convert("RGBA")
    rgba.putalpha(255)
    corner = rgba.copy()
    corner.paste((0, 0, 0, 0), (0, 0, 40, 40))  # a transparent corner: composited onto white
    other = _photo("chelsea").resize(rgb.size)
    frames = [rgb.quantize(256), other.quantize(256)]
    gif = io.BytesIO()
    frames[0].save(gif, format="GIF", save_all=True, append_images=frames[1:], duration=200, loop=0)
    return [
        Case("empty", b"", "reject", "empty"),
        Case("garbage", bytes(range(256)) * 16, "reject", "not a recognised image"),
        Case("text", b"GET / HTTP/1.1\r\nHost: example\r\n\r\n", "reject", "not a recognised image"),
        Case("truncated_jpeg", jpeg[: len(jpeg) // 2], "reject", "truncated"),
        Case("one_pixel", _encode(Image.new("RGB", (1, 1), (200, 30, 30)), "PNG"), "classify", "upscaled"),
        Case("grayscale", _encode(rgb.convert("L"), "JPEG", quality=90), "classify", photo),
        Case("cmyk", _encode(rgb.convert("CMYK"), "JPEG", quality=90), "classify", photo),
        Case("png_alpha", _encode(corner, "PNG"), "classify", photo),
        Case("animated_gif", gif.getvalue(), "classify", f"{photo} (first frame)"),
        Case("bomb_60000x60000", png_with_declared_size(60000, 60000), "reject", "too many pixels"),
    ]
