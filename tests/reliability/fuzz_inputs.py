"""Hypothesis strategies for hostile inputs: images (random bytes, truncated/corrupted JPEG/PNG/WebP, odd modes,
EXIF orientations, huge dimensions in tiny files), boxes (NaN/inf/negative/huge, too many, malformed JSON),
option strings and content types."""

from __future__ import annotations

import io
import json
import math
import struct

import numpy as np
from hypothesis import strategies as st
from PIL import Image

from tests.images import png_header_only as huge_png


def _encode(img: Image.Image, fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _base(mode: str = "RGB", w: int = 96, h: int = 128) -> Image.Image:
    arr = np.random.default_rng(1).integers(0, 255, (h, w, 3), dtype=np.uint8)
    return Image.fromarray(arr).convert(mode) if mode != "RGB" else Image.fromarray(arr)


def huge_jpeg(width: int, height: int) -> bytes:
    """A small valid JPEG whose SOF header claims ``width``×``height`` (a decompression bomb's header)."""
    data = bytearray(_encode(_base(), "JPEG"))
    i = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, i + 5, height, width)
    return bytes(data)


def _exif(orientation: int) -> bytes:
    img = _base()
    exif = Image.Exif()
    exif[0x0112] = orientation
    return _encode(img, "JPEG", exif=exif.tobytes())


VALID: dict[str, bytes] = {
    "jpeg": _encode(_base(), "JPEG"),
    "png": _encode(_base(), "PNG"),
    "webp": _encode(_base(), "WEBP"),
    "jpeg_cmyk": _encode(_base("CMYK"), "JPEG"),
    "jpeg_grey": _encode(_base("L"), "JPEG"),
    "png_rgba": _encode(_base("RGBA"), "PNG"),
    "png_la": _encode(_base("LA"), "PNG"),
    "png_p": _encode(_base("P"), "PNG"),
    "png_1bit": _encode(_base("1"), "PNG"),
    "png_i16": _encode(Image.fromarray(np.arange(96 * 128, dtype=np.uint16).reshape(128, 96) * 5), "PNG"),
    "webp_rgba": _encode(_base("RGBA"), "WEBP"),
    "tiff": _encode(_base(), "TIFF"),
    "gif": _encode(_base("P"), "GIF"),
    "bmp": _encode(_base(), "BMP"),
    **{f"jpeg_exif{o}": _exif(o) for o in range(1, 9)},
    "png_huge_header": huge_png(100_000, 100_000),
    "png_zero_dims": huge_png(0, 0),
    "jpeg_huge_header": huge_jpeg(65_000, 65_000),
    "jpeg_1x65000": huge_jpeg(1, 65_000),
    "empty": b"",
}
BASES = ("jpeg", "png", "webp", "jpeg_cmyk", "png_i16", "png_rgba", "webp_rgba")


@st.composite
def images(draw: st.DrawFn) -> tuple[str, bytes]:
    kind = draw(st.sampled_from(["valid", "truncated", "corrupted", "random", "prefix"]))
    if kind == "valid":
        name = draw(st.sampled_from(sorted(VALID)))
        return name, VALID[name]
    if kind == "random":
        return "random", draw(st.binary(min_size=0, max_size=2048))
    name = draw(st.sampled_from(BASES))
    data = VALID[name]
    if kind == "truncated":
        n = draw(st.integers(0, len(data) - 1))
        return f"{name}_trunc{n}", data[:n]
    if kind == "prefix":  # a valid magic number followed by garbage
        return f"{name}_magic", data[:12] + draw(st.binary(min_size=0, max_size=512))
    buf = bytearray(data)
    for pos, val in draw(
        st.lists(st.tuples(st.integers(0, len(buf) - 1), st.integers(0, 255)), min_size=1, max_size=8)
    ):
        buf[pos] = val
    return f"{name}_corrupt", bytes(buf)


NUM = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from([math.nan, math.inf, -math.inf, -1.0, 0.0, 1e308, -1e308, 5e-324]),
    st.integers(-(2**64), 2**64),
)
BOX = st.lists(NUM, min_size=3, max_size=6)


def _dumps(v: object) -> str:
    return json.dumps(v, allow_nan=True)  # NaN/Infinity tokens: Python's json accepts them, so must we


BOXES_JSON = st.one_of(
    st.none(),
    st.lists(BOX, max_size=8).map(_dumps),
    st.integers(60, 5000).map(lambda n: _dumps([[10, 10, 50, 50]] * n)),  # too many
    st.text(max_size=40),  # not JSON, or JSON of the wrong shape
    st.sampled_from(
        ['{"x": 1}', "[[1,2,3,4,true]]", '[["a","b","c","d"]]', "[null]", "[[1e999,0,1,1]]", "[]"]
    ),
)
OPTION_TEXT = st.one_of(
    st.none(),
    st.text(max_size=12),
    st.sampled_from(["nan", "inf", "-1", "1e400", "true", "0", "coco", "99999999999999999999"]),
)
OPTIONS = st.fixed_dictionaries(
    {},
    optional=dict.fromkeys(("flip", "min_score", "max_persons", "nms", "format", "image_id"), OPTION_TEXT),
)
CONTENT_TYPES = st.sampled_from(
    ["image/jpeg", "image/png", "image/webp", "text/plain", "application/json", "application/octet-stream",
     "image/gif", "", "multipart/form-data", "image/jpeg; charset=utf-8"]
)  # fmt: skip
