"""Draw boxes and skeletons (OpenCV) for ``--render`` and the REST render endpoint."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
from numpy.typing import NDArray

from ..schemas import PoseResult
from ..zoo.keypoints import schema_for_joints


def _score_colour(score: float) -> tuple[int, int, int]:
    """Red (low) → yellow → green (high) in RGB for a keypoint score in [0, 1]."""
    s = float(np.clip(score, 0.0, 1.0))
    return (int(255 * min(1.0, 2 - 2 * s)), int(255 * min(1.0, 2 * s)), 0)


def render_poses(
    image_rgb: NDArray[np.uint8],
    result: PoseResult,
    skeleton: Sequence[tuple[int, int]] | None = None,
    kpt_threshold: float = 0.2,
) -> NDArray[np.uint8]:
    """Return a copy of ``image_rgb`` with each person's box, score, skeleton and joints drawn.

    ``skeleton``: limbs as joint index pairs; default: the registered keypoint schema whose joints are the
    result's ``joint_names`` (no limbs when none matches: joints and boxes are still drawn).

    Joints with score ≤ ``kpt_threshold`` (and limbs touching them) are not drawn; joint colour encodes
    the score (red → green).
    """
    if skeleton is None:
        schema = schema_for_joints(result.joint_names)
        skeleton = schema.skeleton if schema is not None else ()
    out = np.ascontiguousarray(image_rgb.copy())
    h, w = out.shape[:2]
    thick = max(1, round(min(h, w) / 300))
    for p in result.persons:
        x, y, bw, bh = p.bbox
        cv2.rectangle(out, (int(x), int(y)), (int(x + bw), int(y + bh)), (0, 160, 255), thick)
        label = f"{p.score:.2f}" + (f" #{p.track_id}" if p.track_id is not None else "")
        cv2.putText(
            out,
            label,
            (int(x), max(0, int(y) - 4)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.4 * thick,
            (0, 160, 255),
            thick,
        )
        k = p.keypoints
        ok = np.isfinite(k[:, :2]).all(axis=1) & (k[:, 2] > kpt_threshold)
        ok &= (np.abs(k[:, 0]) < 1e6) & (np.abs(k[:, 1]) < 1e6)
        for a, b in skeleton:
            if a < len(k) and b < len(k) and ok[a] and ok[b]:
                cv2.line(
                    out, (int(k[a, 0]), int(k[a, 1])), (int(k[b, 0]), int(k[b, 1])), (255, 255, 255), thick
                )
        for j in np.nonzero(ok)[0]:
            cv2.circle(out, (int(k[j, 0]), int(k[j, 1])), thick + 2, _score_colour(float(k[j, 2])), -1)
    return out


def encode_png(image_rgb: NDArray[np.uint8]) -> bytes:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError("PNG encoding failed")
    return bytes(buf.tobytes())


def encode_jpeg(image_rgb: NDArray[np.uint8], quality: int = 90) -> bytes:
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(image_rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise RuntimeError("JPEG encoding failed")
    return bytes(buf.tobytes())
