"""A straightforward per-joint DARK decoder (the official structure: numpy + OpenCV, one joint at a time).

Used only as the baseline of the decode micro-benchmark (``posesvc bench --micro``, ``bench/bench_core.py``);
the same maths as :mod:`service.codecs.functional`.
"""

from __future__ import annotations

import cv2
import numpy as np
from numpy.typing import NDArray


def dark_decode_loop(
    hm: NDArray[np.float32], kernel: int = 11
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    """``hm`` (N, K, H, W) float32 → coords (N, K, 2) float32 heatmap px, maxvals (N, K) float32."""
    n, k, h, w = hm.shape
    coords = np.zeros((n, k, 2), np.float32)
    maxvals = np.zeros((n, k), np.float32)
    b = (kernel - 1) // 2
    for i in range(n):
        for j in range(k):
            plane = hm[i, j]
            idx = int(np.argmax(plane))
            mv = plane.flat[idx]
            maxvals[i, j] = mv
            x, y = (float(idx % w), float(idx // w)) if mv > 0 else (0.0, 0.0)
            dr = np.zeros((h + 2 * b, w + 2 * b))
            dr[b:-b, b:-b] = plane
            dr = cv2.GaussianBlur(dr, (kernel, kernel), 0)
            bl = dr[b:-b, b:-b].astype(np.float32)
            bl *= mv / np.max(bl)
            lg = np.log(np.maximum(bl, 1e-10))
            px, py = int(x), int(y)
            if 1 < px < w - 2 and 1 < py < h - 2:
                dx = 0.5 * float(lg[py, px + 1] - lg[py, px - 1])
                dy = 0.5 * float(lg[py + 1, px] - lg[py - 1, px])
                dxx = 0.25 * (float(lg[py, px + 2]) - 2 * float(lg[py, px]) + float(lg[py, px - 2]))
                dxy = 0.25 * float(
                    lg[py + 1, px + 1] - lg[py - 1, px + 1] - lg[py + 1, px - 1] + lg[py - 1, px - 1]
                )
                dyy = 0.25 * (float(lg[py + 2, px]) - 2 * float(lg[py, px]) + float(lg[py - 2, px]))
                if dxx * dyy - dxy**2 != 0:
                    off = -np.linalg.inv(np.array([[dxx, dxy], [dxy, dyy]])) @ np.array([dx, dy])
                    x, y = x + off[0], y + off[1]
            coords[i, j] = (x, y)
    return coords, maxvals
