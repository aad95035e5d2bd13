"""Decoding untrusted bytes and each network's preprocessing recipe."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from imaging import preprocess as pp
from imaging.bad_inputs import Case, cases, png_with_declared_size
from imaging.preprocess import (
    EFFICIENTNET_LITE,
    KERAS_CAFFE,
    TORCHVISION_IMAGENET,
    ImageError,
    PreprocessConfig,
    decode_image,
    normalize,
    prepare_rgb,
    preprocess_batch,
    preprocess_bytes,
)
from imaging.samples import sample_bytes


def encode(image: Image.Image, fmt: str = "PNG", **kwargs: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def column_image(width: int, height: int) -> Image.Image:
    """Red channel = x coordinate (mod 256), green = y: crops can be located exactly."""
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x % 256, y % 256, np.full_like(x, 7)], axis=-1).astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


@pytest.mark.parametrize(
    ("config", "shape"),
    [(TORCHVISION_IMAGENET, (3, 224, 224)), (KERAS_CAFFE, (224, 224, 3)), (EFFICIENTNET_LITE, (3, 224, 224))],
)
def test_each_recipe_produces_its_network_input(config: PreprocessConfig, shape: tuple[int, ...]) -> None:
    out = preprocess_bytes(sample_bytes("chelsea"), config)
    assert out.shape == shape == config.shape
    assert out.dtype == np.float32
    assert np.isfinite(out).all()
    batch = preprocess_batch([sample_bytes("coffee"), sample_bytes("rocket")], config)
    assert batch.shape == (2, *shape)


def test_resize_shorter_then_centre_crop_matches_torchvision_offsets() -> None:
    # shorter side already 256: no resize, so the centre crop is exact: columns 144..367
    image = column_image(512, 256)
    pixels = prepare_rgb(image, TORCHVISION_IMAGENET)
    assert pixels.shape == (224, 224, 3)
    assert pixels[0, 0, 0] == 144 % 256 and pixels[0, -1, 0] == (144 + 223) % 256
    assert pixels[0, 0, 1] == 16 and pixels[-1, 0, 1] == 16 + 223


def test_resize_keeps_aspect_like_torchvision() -> None:
    # 601x400 -> shorter side 256 -> int(256 * 601 / 400) = 384 x 256, then crop 224 at (80, 16)
    image = column_image(601, 400)
    expected = image.resize((384, 256), Image.Resampling.BILINEAR).crop((80, 16, 304, 240))
    np.testing.assert_array_equal(prepare_rgb(image, TORCHVISION_IMAGENET), np.asarray(expected))
    # portrait: the same rule on the other axis
    tall = column_image(300, 500)  # -> 256 x 426, crop at (16, 101)
    expected = tall.resize((256, 426), Image.Resampling.BILINEAR).crop((16, 101, 240, 325))
    np.testing.assert_array_equal(prepare_rgb(tall, TORCHVISION_IMAGENET), np.asarray(expected))


def test_efficientnet_crops_the_centre_fraction_then_resizes() -> None:
    # 256x256: crop int(224/256 * 256) = 224 at offset 16, resize 224 -> 224 is a no-op
    pixels = prepare_rgb(column_image(256, 256), EFFICIENTNET_LITE)
    assert pixels[0, 0, 0] == 16 and pixels[0, -1, 0] == 16 + 223
    assert pixels[0, 0, 1] == 16


def test_torchvision_normalisation() -> None:
    pixels = np.zeros((2, 2, 3), np.uint8)
    pixels[0, 0] = (255, 128, 0)
    out = normalize(pixels, TORCHVISION_IMAGENET)
    assert out.shape == (3, 2, 2)
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    expected = (np.array([255, 128, 0]) / 255.0 - mean) / std
    np.testing.assert_allclose(out[:, 0, 0], expected, rtol=1e-6)


def test_keras_caffe_is_bgr_mean_subtraction_nhwc() -> None:
    pixels = np.zeros((1, 1, 3), np.uint8)
    pixels[0, 0] = (10, 20, 30)  # RGB
    out = normalize(pixels, KERAS_CAFFE)
    assert out.shape == (1, 1, 3)
    # keras.applications.imagenet_utils caffe mode: x[..., ::-1] - [103.939, 116.779, 123.68]
    np.testing.assert_allclose(out[0, 0], [30 - 103.939, 20 - 116.779, 10 - 123.68], rtol=1e-6)


def test_efficientnet_lite_constants() -> None:
    pixels = np.array([[[0, 127, 255]]], np.uint8)
    out = normalize(pixels, EFFICIENTNET_LITE)
    np.testing.assert_allclose(out[:, 0, 0], [-127 / 128, 0.0, 128 / 128], rtol=1e-6)


def test_config_rejects_contradictory_geometry() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        PreprocessConfig(name="x", resize_shorter=256, crop_fraction=0.9)
    with pytest.raises(ValueError, match="< crop size"):
        PreprocessConfig(name="x", resize_shorter=200)


@pytest.mark.parametrize(
    ("mode", "colour", "expected"),
    [
        ("L", 100, (100, 100, 100)),
        ("LA", (100, 0), (255, 255, 255)),  # fully transparent -> white
        ("RGBA", (10, 20, 30, 255), (10, 20, 30)),
        ("RGBA", (10, 20, 30, 0), (255, 255, 255)),
        ("CMYK", (0, 0, 0, 0), (255, 255, 255)),
        ("1", 1, (255, 255, 255)),
        ("I;16", 65535, (255, 255, 255)),
        ("I", 300, (1, 1, 1)),  # 16-bit range scaled to 8 bits: 300 / 65535 * 255
        ("F", 0.5, (128, 128, 128)),
    ],
)
def test_every_mode_becomes_rgb(mode: str, colour: object, expected: tuple[int, int, int]) -> None:
    image = pp._to_rgb(Image.new(mode, (4, 4), colour))
    assert image.mode == "RGB"
    assert image.getpixel((0, 0)) == expected


def test_palette_with_transparency_is_composited() -> None:
    image = Image.new("P", (4, 4), 0)
    image.putpalette([0, 0, 0, 200, 10, 10] + [0] * 762)
    image.info["transparency"] = 0
    decoded = decode_image(encode(image, "PNG"))
    assert decoded.getpixel((0, 0)) == (255, 255, 255)


def test_exif_orientation_is_applied() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when shown
    data = encode(Image.new("RGB", (40, 20), (255, 0, 0)), "JPEG", exif=exif.tobytes())
    assert decode_image(data).size == (20, 40)


def test_animated_gif_gives_its_first_frame() -> None:
    frames = [Image.new("RGB", (8, 8), c).quantize(4) for c in ((255, 0, 0), (0, 0, 255))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:])
    assert Image.open(io.BytesIO(buffer.getvalue())).n_frames == 2
    assert decode_image(buffer.getvalue()).getpixel((0, 0)) == (255, 0, 0)


@pytest.mark.parametrize("case", cases(), ids=lambda c: c.name)
def test_bad_inputs_are_classified_or_rejected_clearly(case: Case) -> None:
    if case.expect == "reject":
        with pytest.raises(ImageError, match=case.reason):
            preprocess_bytes(case.data, TORCHVISION_IMAGENET)
    else:
        out = preprocess_bytes(case.data, TORCHVISION_IMAGENET)
        assert out.shape == (3, 224, 224) and np.isfinite(out).all()


def test_header_above_our_limit_but_below_pillows_is_refused_before_decoding() -> None:
    data = png_with_declared_size(8000, 8000)  # 64 Mpx: Pillow only warns, we refuse
    with pytest.raises(ImageError, match="8000x8000"):
        decode_image(data)
    with pytest.raises(ImageError, match="too many pixels"):
        decode_image(encode(Image.new("RGB", (100, 100))), max_pixels=5000)


def test_formats_outside_the_allow_list_are_refused() -> None:
    ico = encode(Image.new("RGB", (16, 16)), "ICO")
    assert Image.open(io.BytesIO(ico)).format == "ICO"  # Pillow itself would read it
    with pytest.raises(ImageError, match="not a recognised image"):
        decode_image(ico)
    eps = b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n"  # would run Ghostscript
    with pytest.raises(ImageError, match="not a recognised image"):
        decode_image(eps)


def test_size_and_type_limits() -> None:
    with pytest.raises(ImageError, match="limit is 10"):
        decode_image(b"x" * 11, max_bytes=10)
    with pytest.raises(ImageError, match="expected encoded image bytes"):
        decode_image("coffee.png")  # type: ignore[arg-type]
    assert decode_image(bytearray(sample_bytes("coffee"))).size == (600, 400)


def test_grayscale_sample_photo_is_accepted() -> None:
    out = preprocess_bytes(sample_bytes("camera"), EFFICIENTNET_LITE)  # an 8-bit L PNG
    # grey in, grey out: the three channels are equal (same mean/std for all channels)
    np.testing.assert_array_equal(out[0], out[1])
    np.testing.assert_array_equal(out[1], out[2])


def test_a_broken_exif_block_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_image: Image.Image) -> Image.Image:
        raise TypeError("malformed EXIF")

    monkeypatch.setattr(pp.ImageOps, "exif_transpose", broken)
    assert decode_image(encode(Image.new("RGB", (40, 20)), "JPEG")).size == (40, 20)
