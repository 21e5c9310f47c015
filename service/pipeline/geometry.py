"""Box → center/scale and the affine maps between image, crop and heatmap, per geometry convention.

Conventions (see ``docs/ARCHITECTURE.md``):

* ``darkpose`` (ilovepose/DarkPose checkpoints): box centre ``x + (w-1)/2``; "aligned corners" affine
  ``k = (dst_w-1)/(src_w-1)``, destination centre ``((dst_w-1)/2, (dst_h-1)/2)``.
* ``hrnet`` (HRNet official, MMPose non-UDP): centre ``x + w/2``; ``k = dst_w/src_w``, centre ``dst/2``.

In both, the scale factor comes from the **width** only (``scale[1]`` is ignored by the affine), and
matrices are built exactly like the official code: six float32 points → ``cv2.getAffineTransform`` (float64
2×3). That construction matters: OpenCV's fixed-point ``warpAffine`` amplifies 1e-6 matrix differences into
grey-level differences at hard edges.

Units: boxes ``(x, y, w, h)`` in image pixels; ``scale`` in units of ``pixel_std`` = 200 px (enlargement
included); sizes are ``(width, height)``.
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np
from numpy.typing import NDArray

Convention = Literal["darkpose", "hrnet"]
CONVENTIONS: tuple[Convention, ...] = ("darkpose", "hrnet")
PIXEL_STD = 200.0

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]


def box_to_center_scale(
    boxes: NDArray[np.floating],
    input_size: tuple[int, int],
    convention: Convention = "darkpose",
    padding: float = 1.25,
    pixel_std: float = PIXEL_STD,
) -> tuple[F32, F32]:
    """Official ``_xywh2cs``, vectorised.

    Args:
        boxes: ``(N, 4+)`` boxes ``(x, y, w, h, ...)`` in image pixels, used as given (no clipping).
        input_size: model input ``(W_in, H_in)``; the box is enlarged to this aspect ratio.
        convention: ``darkpose`` (centre ``x + (w-1)/2``) or ``hrnet`` (centre ``x + w/2``).
        padding: enlargement factor (1.25); not applied when ``center_x == -1`` (a legacy quirk kept
            for parity).

    Returns:
        center ``(N, 2)`` float32 pixels and scale ``(N, 2)`` float32 in units of ``pixel_std``.
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, boxes.shape[-1] if np.ndim(boxes) == 2 else 4)
    x, y, w, h = b[:, 0], b[:, 1], b[:, 2].copy(), b[:, 3].copy()
    if convention == "darkpose":
        center = np.stack([x + (w - 1) * 0.5, y + (h - 1) * 0.5], axis=1).astype(np.float32)
    elif convention == "hrnet":
        center = np.stack([x + w * 0.5, y + h * 0.5], axis=1).astype(np.float32)
    else:
        raise ValueError(f"unknown geometry convention {convention!r}; expected one of {CONVENTIONS}")
    aspect = input_size[0] * 1.0 / input_size[1]
    wide = w > aspect * h
    tall = w < aspect * h
    h = np.where(wide, w * 1.0 / aspect, h)
    w = np.where(tall, h * aspect, w)
    scale = np.stack([w * 1.0 / pixel_std, h * 1.0 / pixel_std], axis=1).astype(np.float32)
    enlarge = center[:, 0] != -1
    scale = np.where(enlarge[:, None], scale * np.float32(padding), scale).astype(np.float32)
    return center, scale


def _affine_points(
    center: NDArray[np.floating],
    scale: NDArray[np.floating],
    rot: float,
    output_size: tuple[int, int],
    shift: tuple[float, float],
    convention: Convention,
) -> tuple[F32, F32]:
    """The official three float32 point pairs (src in image px, dst in output px).

    Like the official code, the source points are computed in the dtype ``center`` and ``scale`` come in and
    rounded to float32 once: float32 for COCO boxes (``_xywh2cs`` returns float32), float64 for MPII's
    annotation centres and scales (``mpii.py::_get_db`` keeps float64).
    """
    scale_tmp = _as_float(scale) * PIXEL_STD
    src_w = float(scale_tmp[0])
    dst_w, dst_h = float(output_size[0]), float(output_size[1])
    if convention == "darkpose":
        src_half, dst_half_w, dst_c = (
            (src_w - 1) * 0.5,
            (dst_w - 1) * 0.5,
            ((dst_w - 1) * 0.5, (dst_h - 1) * 0.5),
        )
    else:
        src_half, dst_half_w, dst_c = src_w * 0.5, dst_w * 0.5, (dst_w * 0.5, dst_h * 0.5)
    rot_rad = np.pi * rot / 180
    sn, cs = np.sin(rot_rad), np.cos(rot_rad)
    # get_dir([0, -src_half], rot): (x cos - y sin, x sin + y cos) with x = 0
    src_dir = np.array([0 * cs - (-src_half) * sn, 0 * sn + (-src_half) * cs], dtype=np.float64)
    shift_px = scale_tmp * np.asarray(shift, dtype=np.float32)
    c = _as_float(center)
    src = np.zeros((3, 2), dtype=np.float32)
    dst = np.zeros((3, 2), dtype=np.float32)
    src[0] = c + shift_px
    src[1] = c.astype(np.float64) + src_dir + shift_px
    dst[0] = dst_c
    dst[1] = np.array(dst_c, dtype=np.float64) + np.array([0.0, -dst_half_w], dtype=np.float32)
    src[2] = _third_point(src[0], src[1])
    dst[2] = _third_point(dst[0], dst[1])
    return src, dst


def _as_float(a: NDArray[np.floating]) -> NDArray[np.floating]:
    """float64 stays float64 (MPII's float64 centres); anything else becomes float32 (COCO's boxes)."""
    arr = np.asarray(a)
    return arr if arr.dtype == np.float64 else arr.astype(np.float32)


def _third_point(a: F32, b: F32) -> F32:
    d = a - b
    return b + np.array([-d[1], d[0]], dtype=np.float32)


def get_affine_transform(
    center: NDArray[np.floating],
    scale: NDArray[np.floating],
    rot: float,
    output_size: tuple[int, int],
    shift: tuple[float, float] = (0.0, 0.0),
    inv: bool = False,
    convention: Convention = "darkpose",
) -> F64:
    """Official ``get_affine_transform``: 2×3 float64 matrix image → output (or output → image if ``inv``).

    ``center``/``scale`` in float64 are used in float64 (MPII), anything else in float32 (COCO), as the official
    code does with what its dataset class hands it.
    """
    src, dst = _affine_points(_as_float(center), _as_float(scale), rot, output_size, shift, convention)
    m = cv2.getAffineTransform(dst, src) if inv else cv2.getAffineTransform(src, dst)
    return np.asarray(m, dtype=np.float64)


def affine_matrices(
    center: NDArray[np.floating],
    scale: NDArray[np.floating],
    output_size: tuple[int, int],
    inv: bool = False,
    convention: Convention = "darkpose",
) -> F64:
    """``(N, 2, 3)`` matrices for ``N`` persons (rotation 0, no shift), built like the official ones."""
    n = len(center)
    out = np.empty((n, 2, 3), dtype=np.float64)
    for i in range(n):
        out[i] = get_affine_transform(center[i], scale[i], 0.0, output_size, inv=inv, convention=convention)
    return out


def apply_affine(points: NDArray[np.floating], matrices: F64) -> F64:
    """Map ``(N, K, 2)`` points with ``(N, 2, 3)`` matrices (float64): ``p' = M[:, :2] p + M[:, 2]``."""
    p = np.asarray(points, dtype=np.float64)
    return np.asarray(
        np.einsum("nij,nkj->nki", matrices[:, :, :2], p) + matrices[:, None, :, 2], dtype=np.float64
    )
