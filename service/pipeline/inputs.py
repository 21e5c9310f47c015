"""Request inputs, prepared the same way for the engine and for batch jobs: decode the image (with its
limits checked first) and validate the client's person boxes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ..errors import ImageTooLarge, InvalidBoxes, InvalidInput, PayloadTooLarge
from .image import decode_image


@dataclass(frozen=True)
class InputLimits:
    """What one request may carry: encoded bytes, decoded pixels, client boxes per image."""

    max_image_bytes: int = 20 * 1024 * 1024
    max_image_pixels: int = 50_000_000
    max_boxes: int = 256
    honour_exif: bool = True


def prepare_image(image: bytes | bytearray | memoryview | NDArray[np.uint8], limits: InputLimits) -> NDArray[np.uint8]:
    """Encoded bytes (JPEG/PNG/WebP) or an RGB array → ``(H, W, 3)`` uint8 RGB, limits checked first.

    Raises:
        PayloadTooLarge, ImageTooLarge, UndecodableImage, UnsupportedMediaType, InvalidInput.
    """
    if isinstance(image, bytes | bytearray | memoryview):
        data = bytes(image)
        if len(data) > limits.max_image_bytes:
            raise PayloadTooLarge(f"the image is {len(data)} bytes; the limit is {limits.max_image_bytes}")
        return decode_image(data, honour_exif=limits.honour_exif, max_pixels=limits.max_image_pixels)
    arr = np.asarray(image)
    if arr.dtype != np.uint8 or arr.ndim != 3 or arr.shape[2] != 3 or 0 in arr.shape:
        raise InvalidInput(f"an image array must be (H, W, 3) uint8 RGB, got {arr.dtype} {list(arr.shape)}")
    pixels = arr.shape[0] * arr.shape[1]
    if pixels > limits.max_image_pixels:
        raise ImageTooLarge(f"the image has {pixels} pixels; the limit is {limits.max_image_pixels}")
    return arr


def prepare_boxes(
    boxes: NDArray[np.floating] | Sequence[Sequence[float]] | None, image: NDArray[np.uint8], limits: InputLimits
) -> NDArray[np.float64] | None:
    """Client boxes for ``image`` → validated ``(M, 5)`` float64, or ``None`` (none given: detect)."""
    if boxes is None:
        return None
    checked = validate_boxes(boxes, (int(image.shape[1]), int(image.shape[0])))
    if len(checked) > limits.max_boxes:
        raise InvalidBoxes(f"{len(checked)} boxes given; the limit is {limits.max_boxes} per image")
    return checked


def validate_boxes(
    boxes: NDArray[np.floating] | Sequence[Sequence[float]], image_size: tuple[int, int]
) -> NDArray[np.float64]:
    """Check client boxes and return them as ``(M, 5)`` float64 ``(x, y, w, h, score)`` (score 1 if absent).

    Boxes partly outside the image are valid (as in the official pipeline); boxes entirely outside, with
    non-finite values or non-positive size are rejected with :class:`InvalidBoxes`.
    """
    arr = np.asarray(boxes, dtype=np.float64)
    if arr.size == 0:
        return np.zeros((0, 5), dtype=np.float64)
    if arr.ndim != 2 or arr.shape[1] not in (4, 5):
        raise InvalidBoxes(
            f"boxes must be a list of [x, y, w, h] or [x, y, w, h, score], got shape {list(arr.shape)}"
        )
    if not np.isfinite(arr).all():
        bad = int(np.where(~np.isfinite(arr).all(axis=1))[0][0])
        raise InvalidBoxes(f"box {bad} has a NaN or infinite value: {arr[bad].tolist()}")
    if arr.shape[1] == 4:
        arr = np.concatenate([arr, np.ones((len(arr), 1))], axis=1)
    nonpos = np.where((arr[:, 2] <= 0) | (arr[:, 3] <= 0))[0]
    if nonpos.size:
        raise InvalidBoxes(
            f"box {int(nonpos[0])} has a non-positive width or height: {arr[nonpos[0], :4].tolist()}"
        )
    w, h = image_size
    outside = np.where(
        (arr[:, 0] >= w) | (arr[:, 1] >= h) | (arr[:, 0] + arr[:, 2] <= 0) | (arr[:, 1] + arr[:, 3] <= 0)
    )[0]
    if outside.size:
        raise InvalidBoxes(
            f"box {int(outside[0])} {arr[outside[0], :4].tolist()} lies entirely outside the {w}x{h} image"
        )
    return arr
