"""COCO persons for the study: clean GT boxes, labelled keypoints, and the heatmap geometry per resolution."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ...evaluation.coco import load_coco
from ...pipeline.geometry import affine_matrices, apply_affine, box_to_center_scale
from .config import F64, I64, NUM_JOINTS, ResolutionSpec

# ------------------------------------------------------------------------------------------------ data


@dataclass(frozen=True)
class Persons:
    """The annotated persons of the study, in annotation-file order restricted to the selected images.

    Attributes:
        image_ids: ``(N,)`` COCO image ids.
        ann_ids: ``(N,)`` COCO annotation ids.
        boxes: ``(N, 4)`` float64 DarkPose ``clean_bbox`` ``(x, y, w, h)`` in image px.
        keypoints: ``(N, K, 2)`` float64 GT ``(x, y)`` in image px (0 where unlabelled).
        visible: ``(N, K)`` bool, GT ``v > 0``.
        img_ids: sorted image ids that hold at least one of the persons (the evaluation ``imgIds``).
    """

    image_ids: I64
    ann_ids: I64
    boxes: F64
    keypoints: F64
    visible: NDArray[np.bool_]
    img_ids: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.ann_ids)


def clean_bbox(bbox: Sequence[float], img_w: int, img_h: int) -> tuple[float, float, float, float] | None:
    """DarkPose GT box sanitising (``_load_coco_keypoint_annotation_kernal``); ``None`` if degenerate."""
    x, y, w, h = (float(v) for v in bbox[:4])
    x1, y1 = max(0.0, x), max(0.0, y)
    x2 = min(img_w - 1.0, x1 + max(0.0, w - 1))
    y2 = min(img_h - 1.0, y1 + max(0.0, h - 1))
    if x2 < x1 or y2 < y1:
        return None
    return (x1, y1, x2 - x1 + 1, y2 - y1 + 1)


def persons_from_coco(coco: Any, max_images: int | None = None) -> Persons:
    """Select persons with ``num_keypoints > 0``, ``iscrowd == 0``, positive area and a valid clean box.

    Args:
        coco: a ``pycocotools.coco.COCO``.
        max_images: keep only the first ``max_images`` images (ascending id) that hold such a person.
    """
    anns = [
        a
        for a in coco.dataset["annotations"]
        if a.get("num_keypoints", 0) > 0 and not a.get("iscrowd", 0) and a.get("area", 0) > 0
    ]
    keep_imgs = sorted({int(a["image_id"]) for a in anns})
    if max_images is not None:
        keep_imgs = keep_imgs[:max_images]
    keep = set(keep_imgs)
    image_ids, ann_ids, boxes, kps = [], [], [], []
    for a in anns:
        if int(a["image_id"]) not in keep:
            continue
        img = coco.imgs[a["image_id"]]
        box = clean_bbox(a["bbox"], int(img["width"]), int(img["height"]))
        if box is None:
            continue
        image_ids.append(int(a["image_id"]))
        ann_ids.append(int(a["id"]))
        boxes.append(box)
        kps.append(np.asarray(a["keypoints"], dtype=np.float64).reshape(NUM_JOINTS, 3))
    kp = np.stack(kps) if kps else np.zeros((0, NUM_JOINTS, 3))
    return Persons(
        image_ids=np.asarray(image_ids, dtype=np.int64),
        ann_ids=np.asarray(ann_ids, dtype=np.int64),
        boxes=np.asarray(boxes, dtype=np.float64).reshape(-1, 4),
        keypoints=kp[..., :2].copy(),
        visible=kp[..., 2] > 0,
        img_ids=tuple(sorted(set(image_ids))),
    )


def load_persons(ann_path: Path, max_images: int | None = None) -> tuple[Any, Persons]:
    """``(COCO object, Persons)`` for an annotation file (see :func:`persons_from_coco`)."""
    coco = load_coco(ann_path)
    return coco, persons_from_coco(coco, max_images)


@dataclass(frozen=True)
class HeatmapGeometry:
    """Per-person affines for one resolution: ``forward`` image → heatmap, ``inverse`` heatmap → image,
    both ``(N, 2, 3)`` float64, plus the GT keypoints in heatmap px ``(N, K, 2)`` float64."""

    forward: F64
    inverse: F64
    keypoints_hm: F64


def heatmap_geometry(persons: Persons, res: ResolutionSpec) -> HeatmapGeometry:
    """DarkPose center/scale at ``res.input_size`` and the heatmap affines (``darkpose`` convention)."""
    center, scale = box_to_center_scale(persons.boxes, res.input_size, "darkpose")
    fwd = affine_matrices(center, scale, res.heatmap_size, inv=False, convention="darkpose")
    inv = affine_matrices(center, scale, res.heatmap_size, inv=True, convention="darkpose")
    kp_hm = apply_affine(persons.keypoints, fwd)
    kp_hm = np.where(persons.visible[..., None], kp_hm, 0.0)
    return HeatmapGeometry(fwd, inv, kp_hm)
