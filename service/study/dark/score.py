"""Scoring: COCO results from decoded keypoints, COCOeval (the evaluation module's), pixel errors."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ...evaluation.coco import STAT_NAMES as EVAL_STAT_NAMES
from ...evaluation.coco import evaluate_results
from ...pipeline.postprocess import coco_results, rescore
from .config import F64, IN_VIS_THRE
from .data import Persons

# ------------------------------------------------------------------------------------------------ scoring


def results_for(persons: Persons, keypoints_img: F64, scores: NDArray[np.floating]) -> list[dict[str, Any]]:
    """COCO keypoint results (via :func:`service.pipeline.postprocess.coco_results`), one per person.

    Keypoint score = the decoded maximum; person score = DarkPose rescoring with box score 1, i.e. the mean
    of the keypoint scores above 0.2 (0 if none).

    Args:
        keypoints_img: ``(N, K, 2)`` image px.
        scores: ``(N, K)`` keypoint scores.
    """
    sc = np.asarray(scores, dtype=np.float32)
    person_scores = rescore(np.ones(len(persons)), sc, IN_VIS_THRE)
    kps = np.concatenate([keypoints_img.astype(np.float32), sc[..., None]], axis=-1)
    out: list[dict[str, Any]] = []
    for img_id in np.unique(persons.image_ids):
        sel = np.nonzero(persons.image_ids == img_id)[0]
        out += coco_results(int(img_id), kps[sel], person_scores[sel])
    return out


#: the study's names of the 10 COCO keypoint stats (its CSV columns), in COCOeval's order
STAT_NAMES = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")


def evaluate_keypoints(
    coco_gt: Any, results: list[dict[str, Any]], img_ids: Sequence[int]
) -> dict[str, float]:
    """pycocotools ``COCOeval(iouType='keypoints')`` restricted to ``img_ids`` (the evaluation module's
    scorer); the 10 summary stats under the study's names."""
    stats = evaluate_results(coco_gt, results, img_ids)
    return {ours: stats[theirs] for ours, theirs in zip(STAT_NAMES, EVAL_STAT_NAMES, strict=True)}


def pixel_errors(pred: F64, gt: F64, visible: NDArray[np.bool_]) -> tuple[float, float]:
    """Mean and median Euclidean error ``(N, K, 2)`` vs ``(N, K, 2)`` over ``visible`` joints (NaN if none).

    Non-finite predictions count as infinite error (they make the mean ``inf``; the median is robust)."""
    err = np.linalg.norm(pred - gt, axis=-1)[visible]
    if err.size == 0:
        return float("nan"), float("nan")
    err = np.where(np.isfinite(err), err, np.inf)
    return float(err.mean()), float(np.median(err))
