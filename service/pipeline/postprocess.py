"""COCO post-processing as in DarkPose's ``coco.py::evaluate``: rescoring and OKS-NMS, plus COCO export."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray


def rescore(
    box_scores: NDArray[np.floating], maxvals: NDArray[np.floating], threshold: float = 0.2
) -> NDArray[np.float64]:
    """``box_score × mean(maxvals[maxvals > threshold])`` per person (0 when no joint passes).

    Args:
        box_scores: ``(N,)`` detector scores.
        maxvals: ``(N, K)`` keypoint scores.

    Returns:
        ``(N,)`` float64 person scores.
    """
    mv = np.asarray(maxvals, dtype=np.float64)
    passed = mv > threshold
    count = passed.sum(axis=1)
    total = np.where(passed, mv, 0.0).sum(axis=1)
    kpt = np.divide(total, count, out=np.zeros_like(total), where=count > 0)
    return np.asarray(kpt * np.asarray(box_scores, dtype=np.float64), dtype=np.float64)


def oks_iou(
    g: NDArray[np.float32],
    d: NDArray[np.float32],
    area_g: float,
    area_d: NDArray[np.floating],
    sigmas: Sequence[float],
) -> NDArray[np.float64]:
    """OKS between one person ``g`` ``(K, 3)`` and others ``d`` ``(M, K, 3)`` (all joints count)."""
    var = (np.asarray(sigmas, dtype=np.float64) * 2) ** 2
    dx = (d[..., 0] - g[None, :, 0]).astype(np.float64)
    dy = (d[..., 1] - g[None, :, 1]).astype(np.float64)
    e = (dx**2 + dy**2) / var / ((area_g + np.asarray(area_d, np.float64)[:, None]) / 2 + np.spacing(1)) / 2
    return np.asarray(np.exp(-e).mean(axis=1), dtype=np.float64)


def oks_nms(
    keypoints: NDArray[np.float32],
    scores: NDArray[np.floating],
    areas: NDArray[np.floating],
    threshold: float = 0.9,
    sigmas: Sequence[float] | None = None,
) -> list[int]:
    """Greedy OKS-NMS (official ``oks_nms``): keep the best, drop others with OKS > ``threshold``.

    Args:
        keypoints: ``(N, K, 3)`` float32 ``(x, y, score)`` in image px.
        scores: ``(N,)`` rescored person scores (ordering key; official quicksort order, descending).
        areas: ``(N,)`` ``prod(scale*200)`` of each person.

    Returns:
        indices of kept persons in pick order.
    """
    from ..zoo.keypoints import COCO17

    n = len(scores)
    if n == 0:
        return []
    sig = COCO17.sigmas if sigmas is None else sigmas
    kp = np.asarray(keypoints, dtype=np.float32)
    ar = np.asarray(areas, dtype=np.float64)
    order = np.asarray(scores, dtype=np.float64).argsort(kind="quicksort")[::-1]
    keep: list[int] = []
    while order.size > 0:
        i = int(order[0])
        keep.append(i)
        ovr = oks_iou(kp[i], kp[order[1:]], float(ar[i]), ar[order[1:]], sig)
        order = order[np.where(ovr <= threshold)[0] + 1]
    return keep


def soft_oks_nms(
    keypoints: NDArray[np.float32],
    scores: NDArray[np.floating],
    areas: NDArray[np.floating],
    threshold: float = 0.9,
    sigmas: Sequence[float] | None = None,
    max_dets: int = 20,
) -> list[int]:
    """Official ``soft_oks_nms`` (Gaussian rescoring ``score *= exp(-oks²/threshold)``, at most 20 kept)."""
    from ..zoo.keypoints import COCO17

    n = len(scores)
    if n == 0:
        return []
    sig = COCO17.sigmas if sigmas is None else sigmas
    kp = np.asarray(keypoints, dtype=np.float32)
    ar = np.asarray(areas, dtype=np.float64)
    sc = np.asarray(scores, dtype=np.float64)
    order = sc.argsort()[::-1]
    sc = sc[order]
    keep: list[int] = []
    while order.size > 0 and len(keep) < max_dets:
        i = int(order[0])
        ovr = oks_iou(kp[i], kp[order[1:]], float(ar[i]), ar[order[1:]], sig)
        order = order[1:]
        sc = sc[1:] * np.exp(-(ovr**2) / threshold)
        resort = sc.argsort()[::-1]
        order, sc = order[resort], sc[resort]
        keep.append(i)
    return keep


def coco_results(
    image_id: int, keypoints: NDArray[np.float32], scores: NDArray[np.floating], category_id: int = 1
) -> list[dict[str, Any]]:
    """COCO keypoint results entries: ``{image_id, category_id, keypoints: [x1, y1, s1, ...], score}``."""
    return [
        {
            "image_id": int(image_id),
            "category_id": int(category_id),
            "keypoints": [float(v) for v in np.asarray(k, dtype=np.float32).reshape(-1)],
            "score": float(s),
        }
        for k, s in zip(keypoints, scores, strict=True)
    ]
