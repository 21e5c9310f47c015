"""Image decoding with limits checked before the full decode (no decompression bombs).

Decoding uses OpenCV (``IMREAD_COLOR | IMREAD_IGNORE_ORIENTATION``, then BGR → RGB), exactly like the
official pipeline's ``cv2.imread``; EXIF orientation is then applied unless disabled (parity runs).
"""

from __future__ import annotations

import io
import warnings

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image, UnidentifiedImageError

from ..errors import ImageTooLarge, UndecodableImage, UnsupportedMediaType

SUPPORTED_FORMATS = {"JPEG": "image/jpeg", "PNG": "image/png", "WEBP": "image/webp"}
_EXIF_ORIENTATION = 0x0112


def probe_image(data: bytes, max_pixels: int) -> tuple[str, int, int, int]:
    """Read only the header: ``(format, width, height, exif_orientation)``.

    Raises:
        UndecodableImage: not an image, or truncated before the header ends.
        UnsupportedMediaType: an image format other than JPEG/PNG/WebP.
        ImageTooLarge: more than ``max_pixels`` pixels (checked before any pixel is decoded).
    """
    if not data:
        raise UndecodableImage("the image is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            Image.MAX_IMAGE_PIXELS = None  # we enforce our own limit below, before decoding
            with Image.open(io.BytesIO(data)) as im:
                fmt = im.format or "?"
                width, height = im.size
                orientation = 1
                if fmt in SUPPORTED_FORMATS:
                    try:
                        orientation = int(im.getexif().get(_EXIF_ORIENTATION, 1))
                    except Exception:  # malformed EXIF: ignore orientation, not the image
                        orientation = 1
    except UnidentifiedImageError:
        raise UndecodableImage("the data is not a decodable JPEG, PNG or WebP image") from None
    except Exception as exc:
        raise UndecodableImage(f"the image header cannot be read: {exc}") from None
    if fmt not in SUPPORTED_FORMATS:
        raise UnsupportedMediaType(f"image format {fmt} is not supported; send JPEG, PNG or WebP")
    if width <= 0 or height <= 0:
        raise UndecodableImage(f"the image has an invalid size {width}x{height}")
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"the image is {width}x{height} = {width * height / 1e6:.1f} megapixels; the limit is {max_pixels / 1e6:.1f}"
        )
    if orientation not in range(1, 9):
        orientation = 1
    return fmt, width, height, orientation


def decode_image(data: bytes, *, honour_exif: bool = True, max_pixels: int = 50_000_000) -> NDArray[np.uint8]:
    """Decode JPEG/PNG/WebP bytes to an ``(H, W, 3)`` uint8 **RGB** array.

    Grey, alpha, 16-bit and CMYK inputs are converted to 8-bit RGB (alpha dropped). With ``honour_exif``
    the EXIF orientation tag is applied (phones!); without it pixels are exactly what ``cv2.imread`` with
    ``IMREAD_IGNORE_ORIENTATION`` gives (the official pipeline).
    """
    _, width, height, orientation = probe_image(data, max_pixels)
    buf = np.frombuffer(data, dtype=np.uint8)
    bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if bgr is None or bgr.ndim != 3 or bgr.shape[0] != height or bgr.shape[1] != width:
        raise UndecodableImage("the image data is corrupt or truncated and could not be decoded")
    rgb: NDArray[np.uint8] = np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8)
    if honour_exif and orientation != 1:
        rgb = apply_exif_orientation(rgb, orientation)
    return np.ascontiguousarray(rgb)


def apply_exif_orientation(img: NDArray[np.uint8], orientation: int) -> NDArray[np.uint8]:
    """Rotate/mirror so the image displays upright (EXIF orientation 1–8)."""
    ops = {
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1, :],
        5: lambda a: np.rot90(a[:, ::-1], 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: np.rot90(a[:, ::-1], -1),
        8: lambda a: np.rot90(a, 1),
    }
    op = ops.get(orientation)
    return np.ascontiguousarray(op(img)) if op else img


def read_image_file(
    path: str, *, honour_exif: bool = True, max_pixels: int = 50_000_000
) -> NDArray[np.uint8]:
    """Read and decode an image file (see :func:`decode_image`)."""
    with open(path, "rb") as f:
        return decode_image(f.read(), honour_exif=honour_exif, max_pixels=max_pixels)
