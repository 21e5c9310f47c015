"""Greedy multi-person tracker (pure numpy): associates persons across frames by OKS or IoU.

Units: image pixels; boxes are ``(x, y, w, h)``; keypoints ``(K, 3)`` ``(x, y, score)``. Track ids start at 1
and increase monotonically; an id is never reused within a tracker (one tracker per stream).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray

TrackerKind = Literal["oks", "iou"]

#: COCO keypoint sigmas (17 joints, COCO order), as in the official evaluation.
COCO_SIGMAS: NDArray[np.float64] = (
    np.array([.26, .25, .25, .35, .35, .79, .79, .72, .72, .62, .62, 1.07, 1.07, .87, .87, .89, .89]) / 10.0
)  # fmt: skip


def iou_matrix(a: NDArray[np.floating], b: NDArray[np.floating]) -> NDArray[np.float64]:
    """IoU between every box of ``a`` ``(N, ≥4)`` and ``b`` ``(M, ≥4)`` (``x, y, w, h`` px) → ``(N, M)``."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    a = np.asarray(a, dtype=np.float64).reshape(len(a), -1)
    b = np.asarray(b, dtype=np.float64).reshape(len(b), -1)
    ax0, ay0, ax1, ay1 = a[:, 0:1], a[:, 1:2], a[:, 0:1] + a[:, 2:3], a[:, 1:2] + a[:, 3:4]
    bx0, by0, bx1, by1 = b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    iw = np.clip(np.minimum(ax1, bx1) - np.maximum(ax0, bx0), 0.0, None)
    ih = np.clip(np.minimum(ay1, by1) - np.maximum(ay0, by0), 0.0, None)
    inter = iw * ih
    union = a[:, 2:3] * a[:, 3:4] + b[:, 2] * b[:, 3] - inter
    out: NDArray[np.float64] = np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)
    return out


def oks_matrix(
    kp_a: NDArray[np.floating],
    kp_b: NDArray[np.floating],
    area_b: NDArray[np.floating],
    sigmas: NDArray[np.float64] = COCO_SIGMAS,
    min_score: float = 0.0,
) -> NDArray[np.float64]:
    """OKS between poses ``kp_a`` ``(N, K, 3)`` (tracks) and ``kp_b`` ``(M, K, 3)`` (new persons) → ``(N, M)``.

    ``area_b``: ``(M,)`` object areas (px², from the boxes). Joints count when both scores exceed ``min_score``;
    a pair with no such joint has OKS 0.
    """
    a = np.asarray(kp_a, dtype=np.float64)
    b = np.asarray(kp_b, dtype=np.float64)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    k = a.shape[1]
    sig = sigmas[:k] if len(sigmas) >= k else np.full(k, float(np.mean(sigmas)))
    var = (2.0 * sig) ** 2  # (K,)
    d2 = ((a[:, None, :, :2] - b[None, :, :, :2]) ** 2).sum(-1)  # (N, M, K)
    area = np.maximum(np.asarray(area_b, dtype=np.float64), 1.0)[None, :, None]
    e = np.exp(-d2 / (2.0 * var[None, None, :] * area))
    vis = (a[:, None, :, 2] > min_score) & (b[None, :, :, 2] > min_score)
    n = vis.sum(-1)
    out: NDArray[np.float64] = np.where(n > 0, (e * vis).sum(-1) / np.maximum(n, 1), 0.0)
    return out


def greedy_match(sim: NDArray[np.float64], threshold: float) -> list[tuple[int, int]]:
    """Greedy one-to-one assignment, best similarity first; pairs below ``threshold`` are not matched."""
    pairs: list[tuple[int, int]] = []
    if sim.size == 0:
        return pairs
    order = np.argsort(-sim, axis=None, kind="stable")
    used_r: set[int] = set()
    used_c: set[int] = set()
    for flat in order:
        r, c = divmod(int(flat), sim.shape[1])
        if sim[r, c] < threshold:
            break
        if r in used_r or c in used_c:
            continue
        used_r.add(r)
        used_c.add(c)
        pairs.append((r, c))
    return pairs


@dataclass
class Track:
    """One tracked person: last box ``(x, y, w, h)`` px, last keypoints ``(K, 3)``, frames since last match."""

    track_id: int
    box: NDArray[np.float64]
    keypoints: NDArray[np.float64]
    missing: int = 0
    hits: int = 1


@dataclass
class Tracker:
    """Associates each frame's persons with the tracks of the previous frames.

    Attributes:
        kind: ``"oks"`` (pose similarity with the model's keypoint sigmas, area = box area) or ``"iou"``
            (box overlap).
        match_threshold: minimum similarity for a person to continue a track (else it starts a new one).
        max_missing: frames a track survives unmatched; then it is removed (its id is never reused).
        keypoint_threshold: joints with a score at or below this are ignored by OKS.
        sigmas: per-joint OKS sigmas of the model's keypoint schema (``None``: COCO's 17).
    """

    kind: TrackerKind = "oks"
    match_threshold: float = 0.3
    max_missing: int = 10
    keypoint_threshold: float = 0.0
    sigmas: tuple[float, ...] | None = None
    tracks: list[Track] = field(default_factory=list)
    next_id: int = 1

    def update(self, boxes: NDArray[np.floating], keypoints: NDArray[np.floating]) -> list[int]:
        """Match ``boxes`` ``(M, ≥4)`` / ``keypoints`` ``(M, K, 3)`` of one frame; return their track ids."""
        kps = np.asarray(keypoints, dtype=np.float64)
        m = len(kps)
        boxes = np.asarray(boxes, dtype=np.float64).reshape(m, -1) if m else np.zeros((0, 4))
        if self.tracks and m:
            if self.kind == "iou":
                sim = iou_matrix(np.stack([t.box for t in self.tracks]), boxes)
            else:
                sim = oks_matrix(
                    np.stack([t.keypoints for t in self.tracks]),
                    kps,
                    boxes[:, 2] * boxes[:, 3],
                    sigmas=COCO_SIGMAS if self.sigmas is None else np.asarray(self.sigmas, dtype=np.float64),
                    min_score=self.keypoint_threshold,
                )
            pairs = greedy_match(sim, self.match_threshold)
        else:
            pairs = []
        ids = [0] * m
        matched: set[int] = set()
        for r, c in pairs:
            t = self.tracks[r]
            t.box, t.keypoints, t.missing = boxes[c, :4].copy(), kps[c].copy(), 0
            t.hits += 1
            ids[c] = t.track_id
            matched.add(r)
        survivors = []
        for i, t in enumerate(self.tracks):
            if i not in matched:
                t.missing += 1
                if t.missing > self.max_missing:
                    continue
            survivors.append(t)
        self.tracks = survivors
        for c in range(m):
            if ids[c] == 0:
                t = Track(self.next_id, boxes[c, :4].copy(), kps[c].copy())
                self.next_id += 1
                self.tracks.append(t)
                ids[c] = t.track_id
        return ids

    def active(self) -> list[Track]:
        """Tracks matched in the latest frame."""
        return [t for t in self.tracks if t.missing == 0]
