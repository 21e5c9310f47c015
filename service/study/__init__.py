"""Offline studies on real annotations (no network): :mod:`service.study.dark` measures how heatmap
encoding (quantised vs DARK unbiased) and decoding (argmax, ±0.25 quarter offset, DARK) affect COCO keypoint
AP and pixel error when the heatmaps are synthesised from ground truth."""

from .dark import (
    DECODERS,
    ENCODINGS,
    Degradation,
    Persons,
    ResolutionSpec,
    StudyConfig,
    StudyResult,
    StudyRow,
    load_persons,
    run_study,
    write_outputs,
)

__all__ = [
    "DECODERS",
    "ENCODINGS",
    "Degradation",
    "Persons",
    "ResolutionSpec",
    "StudyConfig",
    "StudyResult",
    "StudyRow",
    "load_persons",
    "run_study",
    "write_outputs",
]
