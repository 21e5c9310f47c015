"""Image decoding: formats, EXIF, limits checked before decoding, corrupt data."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from service.errors import ImageTooLarge, UndecodableImage, UnsupportedMediaType
from service.pipeline.image import decode_image
from tests.images import png_header_only


def _encode(arr, fmt, **kw):
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, **kw)
    return buf.getvalue()


@pytest.fixture
def rgb():
    rng = np.random.default_rng(0)
    a = np.zeros((40, 60, 3), np.uint8)
    a[:20, :30] = (255, 0, 0)
    a[20:, 30:] = rng.integers(0, 255, (20, 30, 3))
    return a


def test_png_round_trip_is_rgb(rgb):
    out = decode_image(_encode(rgb, "PNG"))
    np.testing.assert_array_equal(out, rgb)


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP"])
def test_lossy_formats(rgb, fmt):
    out = decode_image(_encode(rgb, fmt, quality=95))
    assert out.shape == rgb.shape and out.dtype == np.uint8
    assert np.abs(out[:20, :30].astype(int) - (255, 0, 0)).mean() < 20


def test_grey_alpha_16bit_cmyk(rgb):
    assert decode_image(_encode(rgb[..., 0], "PNG")).shape == (40, 60, 3)
    rgba = np.dstack([rgb, np.full((40, 60), 128, np.uint8)])
    assert decode_image(_encode(rgba, "PNG")).shape == (40, 60, 3)
    im16 = Image.fromarray(rgb[..., 0].astype(np.uint16) * 257)
    buf = io.BytesIO()
    im16.save(buf, format="PNG")
    assert decode_image(buf.getvalue()).shape == (40, 60, 3)
    buf = io.BytesIO()
    Image.fromarray(rgb).convert("CMYK").save(buf, format="JPEG")
    assert decode_image(buf.getvalue()).shape == (40, 60, 3)


def test_exif_orientation(rgb):
    im = Image.fromarray(rgb)
    exif = im.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    buf = io.BytesIO()
    im.save(buf, format="JPEG", exif=exif.tobytes(), quality=95)
    upright = decode_image(buf.getvalue())
    raw = decode_image(buf.getvalue(), honour_exif=False)
    assert raw.shape == (40, 60, 3) and upright.shape == (60, 40, 3)
    np.testing.assert_array_equal(upright, np.ascontiguousarray(np.rot90(raw, -1)))


def test_bomb_refused_before_decode():
    data = png_header_only(100_000, 100_000)
    assert len(data) < 200
    with pytest.raises(ImageTooLarge, match="megapixels"):
        decode_image(data, max_pixels=50_000_000)


@pytest.mark.parametrize(
    ("data", "err"),
    [
        (b"", UndecodableImage),
        (b"hello world, not an image", UndecodableImage),
        (b"GIF89a" + b"\x00" * 20, UndecodableImage),
    ],
)
def test_garbage(data, err):
    with pytest.raises(err):
        decode_image(data)


def test_truncated_jpeg(rgb):
    data = _encode(rgb, "JPEG")
    with pytest.raises(UndecodableImage):
        decode_image(data[: len(data) // 3])


def test_unsupported_format(rgb):
    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="BMP")
    with pytest.raises(UnsupportedMediaType, match="BMP"):
        decode_image(buf.getvalue())
