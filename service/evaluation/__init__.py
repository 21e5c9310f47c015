"""Accuracy evaluation: COCO keypoint AP of the serving pipeline (``posesvc eval``)."""

from __future__ import annotations

from .coco import (
    STAT_NAMES,
    EvalReport,
    detection_boxes,
    evaluate_results,
    format_stats,
    ground_truth_boxes,
    oracle_results,
    results_entries,
    write_results,
)

__all__ = [
    "STAT_NAMES",
    "EvalReport",
    "detection_boxes",
    "evaluate_results",
    "format_stats",
    "ground_truth_boxes",
    "oracle_results",
    "results_entries",
    "write_results",
]
