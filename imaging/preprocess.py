"""Decode untrusted image bytes and turn them into each network's input tensor.

One pipeline, parameterised per network by a frozen :class:`PreprocessConfig` (resize
policy, crop, scaling, mean/std, channel order, layout). The Triton preprocessing model,
the client and the parity tests all call :func:`preprocess_bytes`, so the tensors a network
sees on the server are the tensors the tests check.

Decoding treats the bytes as hostile: only a few raster formats are accepted (PIL would
otherwise also try EPS through Ghostscript, among others), the pixel count is checked from
the header *before* any pixel is decoded (decompression bombs), truncated files are errors,
and every image mode (L, LA, P, RGBA, CMYK, I;16, ...) is converted to 8-bit RGB. Every
failure is an :class:`ImageError` with a message meant for the person who sent the image.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Formats a user may send. Everything else (EPS, PDF, ICO, PSD, ...) is refused before PIL
# picks a plugin for it.
ALLOWED_FORMATS: tuple[str, ...] = ("JPEG", "PNG", "GIF", "BMP", "WEBP", "TIFF")
MAX_BYTES = 32 * 1024 * 1024  # 32 MiB of encoded data per image
MAX_PIXELS = 50_000_000  # ~7000 x 7000; a 60000 x 60000 header is refused before decoding
MIN_SIDE = 1  # a 1x1 image is upscaled and classified (see docs/images.md)

Interpolation = Literal["bilinear", "bicubic"]
# Pillow warns between 1x and 2x its own pixel limit; decode_image checks sizes itself (and
# warnings.catch_warnings is not thread-safe, the preprocessing model decodes on threads).
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)

_PIL_RESAMPLE = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC}


class ImageError(ValueError):
    """The bytes are not an image this service can classify; the message says why."""


@dataclass(frozen=True)
class PreprocessConfig:
    """How one network wants its pixels.

    Geometry, one of two policies:

    * ``resize_shorter`` set: resize so the shorter side is ``resize_shorter`` (aspect kept),
      then centre-crop ``size`` x ``size`` (torchvision's ``Resize(256) + CenterCrop(224)``);
    * ``crop_fraction`` set: centre-crop a square of ``crop_fraction`` x the shorter side, then
      resize it to ``size`` x ``size`` (the EfficientNet TF eval pipeline, ``224 / (224 + 32)``).

    Values: ``pixel * scale``, then ``(value - mean) / std`` per channel, with ``mean`` and
    ``std`` given in RGB order; then channels are reordered to ``channel_order`` and the array
    laid out as ``layout`` (without the batch dimension).
    """

    name: str
    size: int = 224
    resize_shorter: int | None = 256
    crop_fraction: float | None = None
    interpolation: Interpolation = "bilinear"
    scale: float = 1.0 / 255.0
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    channel_order: Literal["RGB", "BGR"] = "RGB"
    layout: Literal["CHW", "HWC"] = "CHW"

    def __post_init__(self) -> None:
        if (self.resize_shorter is None) == (self.crop_fraction is None):
            raise ValueError(f"{self.name}: set exactly one of resize_shorter and crop_fraction")
        if self.resize_shorter is not None and self.resize_shorter < self.size:
            raise ValueError(f"{self.name}: resize_shorter {self.resize_shorter} < crop size {self.size}")
        if self.crop_fraction is not None and not 0 < self.crop_fraction <= 1:
            raise ValueError(f"{self.name}: crop_fraction must be in (0, 1]")
        if any(s == 0 for s in self.std):
            raise ValueError(f"{self.name}: std must not be zero")

    @property
    def shape(self) -> tuple[int, int, int]:
        """The output shape of one image (no batch dimension)."""
        return (3, self.size, self.size) if self.layout == "CHW" else (self.size, self.size, 3)


# torchvision's ImageNet recipe, used by its ResNet-152 checkpoints.
TORCHVISION_IMAGENET = PreprocessConfig(name="torchvision_imagenet")

# keras.applications.resnet.preprocess_input ("caffe" mode): RGB -> BGR, subtract the ImageNet
# mean in 0..255, no scaling; NHWC. The mean below is Keras' [103.939, 116.779, 123.68] (BGR)
# written in RGB order.
KERAS_CAFFE = PreprocessConfig(
    name="keras_caffe",
    scale=1.0,
    mean=(123.68, 116.779, 103.939),
    std=(1.0, 1.0, 1.0),
    channel_order="BGR",
    layout="HWC",
)

# EfficientNet-Lite (efficientnet_lite_builder.py: MEAN_RGB 127, STDDEV_RGB 128) with the
# EfficientNet eval crop (centre crop of 224/(224+32) of the shorter side, bicubic resize).
EFFICIENTNET_LITE = PreprocessConfig(
    name="efficientnet_lite",
    resize_shorter=None,
    crop_fraction=224 / (224 + 32),
    interpolation="bicubic",
    scale=1.0,
    mean=(127.0, 127.0, 127.0),
    std=(128.0, 128.0, 128.0),
)

CONFIGS: dict[str, PreprocessConfig] = {
    c.name: c for c in (TORCHVISION_IMAGENET, KERAS_CAFFE, EFFICIENTNET_LITE)
}


def decode_image(
    data: bytes,
    *,
    max_bytes: int = MAX_BYTES,
    max_pixels: int = MAX_PIXELS,
    formats: Sequence[str] = ALLOWED_FORMATS,
) -> Image.Image:
    """Decode ``data`` into an 8-bit RGB image, or raise :class:`ImageError`.

    Animated images give their first frame; EXIF orientation is applied (phone photos);
    transparency is composited onto white, as a viewer would show it.
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise ImageError(f"expected encoded image bytes, got {type(data).__name__}")
    size = len(data)
    if size == 0:
        raise ImageError("empty input: no image bytes were sent")
    if size > max_bytes:
        raise ImageError(f"image is {size} bytes; the limit is {max_bytes}")
    try:
        image = Image.open(io.BytesIO(bytes(data)), formats=list(formats))
    except UnidentifiedImageError:
        raise ImageError(f"not a recognised image (accepted formats: {', '.join(formats)})") from None
    except Image.DecompressionBombError:
        raise ImageError(
            f"image header declares too many pixels (more than twice Pillow's limit of "
            f"{Image.MAX_IMAGE_PIXELS}); the limit is {max_pixels}, refused before decoding"
        ) from None
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageError(f"cannot read image header: {exc}") from None

    width, height = image.size
    if width < MIN_SIDE or height < MIN_SIDE:
        raise ImageError(f"image is {width}x{height} pixels; both sides must be at least {MIN_SIDE}")
    if width * height > max_pixels:
        raise ImageError(
            f"image header declares too many pixels: {width}x{height} = {width * height}; "
            f"the limit is {max_pixels}, refused before decoding"
        )
    try:
        if getattr(image, "n_frames", 1) > 1:
            image.seek(0)  # animated GIF/WebP/PNG: classify the first frame
        image.load()
        image = _apply_orientation(image)
        return _to_rgb(image)
    except Image.DecompressionBombError as exc:
        raise ImageError(f"image declares too many pixels: {exc}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        # truncated or corrupt data ("image file is truncated", broken chunks, ...)
        fmt = image.format or "image"
        raise ImageError(f"corrupt or truncated {fmt} data: {exc}") from None


def _apply_orientation(image: Image.Image) -> Image.Image:
    """Rotate as the EXIF orientation says; a broken EXIF block is ignored, not fatal."""
    try:
        return ImageOps.exif_transpose(image)
    except Exception:  # malformed EXIF raises all sorts (struct.error, KeyError, TypeError, ...)
        return image


def _to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode to 8-bit RGB; transparency composited onto white."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):  # 16-bit / 32-bit grey
        array = np.asarray(image, dtype=np.float64)
        top = float(array.max(initial=0))
        if mode.startswith("I;16") or (mode == "I" and top > 255):
            peak = 65535.0
        elif mode == "F" and top <= 1.0:
            peak = 1.0  # float images in [0, 1]
        else:
            peak = 255.0
        grey = np.clip(array / peak * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(grey, mode="L").convert("RGB")
    if mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
        mode = "RGBA"
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")  # L, 1, P, CMYK, YCbCr, LAB, HSV


def _geometry(image: Image.Image, config: PreprocessConfig) -> Image.Image:
    resample = _PIL_RESAMPLE[config.interpolation]
    width, height = image.size
    size = config.size
    if config.resize_shorter is not None:
        # torchvision Resize(int): shorter side -> resize_shorter, longer side truncated
        short, long = (width, height) if width <= height else (height, width)
        new_short, new_long = config.resize_shorter, int(config.resize_shorter * long / short)
        new_w, new_h = (new_short, new_long) if width <= height else (new_long, new_short)
        if (new_w, new_h) != (width, height):
            image = image.resize((new_w, new_h), resample)
        # torchvision CenterCrop: offsets rounded
        left = round((new_w - size) / 2.0)
        top = round((new_h - size) / 2.0)
        return image.crop((left, top, left + size, top + size))
    assert config.crop_fraction is not None
    crop = max(1, int(config.crop_fraction * min(width, height)))
    left, top = (width - crop + 1) // 2, (height - crop + 1) // 2
    image = image.crop((left, top, left + crop, top + crop))
    return image.resize((size, size), resample)


def prepare_rgb(image: Image.Image, config: PreprocessConfig) -> np.ndarray:
    """The resized and cropped pixels, uint8 HWC RGB (before any normalisation)."""
    return np.asarray(_geometry(image, config), dtype=np.uint8)


def normalize(pixels: np.ndarray, config: PreprocessConfig) -> np.ndarray:
    """uint8 HWC RGB -> float32 network input (scale, mean/std, channel order, layout)."""
    values = pixels.astype(np.float32) * np.float32(config.scale)
    values = (values - np.asarray(config.mean, np.float32)) / np.asarray(config.std, np.float32)
    if config.channel_order == "BGR":
        values = values[..., ::-1]
    if config.layout == "CHW":
        values = values.transpose(2, 0, 1)
    return np.ascontiguousarray(values, dtype=np.float32)


def preprocess_image(image: Image.Image, config: PreprocessConfig) -> np.ndarray:
    """A decoded RGB image -> one network input of shape ``config.shape``."""
    return normalize(prepare_rgb(image, config), config)


def preprocess_bytes(data: bytes, config: PreprocessConfig) -> np.ndarray:
    """Encoded image bytes -> one network input; raises :class:`ImageError` on bad input."""
    return preprocess_image(decode_image(data), config)


def preprocess_batch(images: Sequence[bytes], config: PreprocessConfig) -> np.ndarray:
    """Several encoded images -> a batch ``(N, *config.shape)``; any bad image raises."""
    return np.stack([preprocess_bytes(data, config) for data in images])
