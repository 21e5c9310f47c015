"""The public pipeline API: detector (when needed) + pose estimator, synchronous, batch in → results out."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from ..estimators.base import Estimator
from ..schemas import BoxesSource, PoseOptions, PoseResult
from .card import ModelCard
from .detector import PersonDetector


class PosePipeline:
    """Top-down pipeline for a batch of images.

    Images whose boxes are ``None`` go through the detector (one batched call); the others use their client
    boxes. All crops of the batch are then pooled by the estimator. Zero persons → empty result, no forward.
    """

    def __init__(self, estimator: Estimator, detector: PersonDetector | None = None) -> None:
        self.estimator = estimator
        self.detector = detector
        #: Batched detector calls made so far (one per :meth:`run` that had images without boxes).
        self.detector_calls = 0

    @property
    def card(self) -> ModelCard:
        return self.estimator.card

    def run(
        self,
        images: Sequence[NDArray[np.uint8]],
        boxes: Sequence[NDArray[np.floating] | None],
        options: Sequence[PoseOptions] | PoseOptions | None = None,
        timings: dict[str, float] | None = None,
    ) -> list[PoseResult]:
        """Args: RGB uint8 images; per image client boxes ``(M, 4|5)`` or ``None`` (detect); options.

        Returns one :class:`PoseResult` per image, in order.
        """
        stage: dict[str, float] = {}
        need = [i for i, b in enumerate(boxes) if b is None] if self.estimator.needs_boxes else []
        # a bottom-up estimator gets the boxes as sent (it finds the persons itself and refuses boxes)
        resolved: list[NDArray[np.floating] | None] = (
            [np.zeros((0, 5)) if b is None else b for b in boxes] if self.estimator.needs_boxes else list(boxes)
        )
        sources: list[BoxesSource] = ["client"] * len(images)
        if need:
            if self.detector is None:
                raise RuntimeError("no person detector is configured; pass boxes with the request")
            t0 = time.perf_counter()
            found = self.detector.detect([images[i] for i in need])
            self.detector_calls += 1
            stage["detect"] = time.perf_counter() - t0
            for i, b in zip(need, found, strict=True):
                resolved[i] = b
                sources[i] = "detector"
        results = self.estimator.estimate(images, resolved, options, sources, stage)
        if "detect" in stage:  # the batch's detector call is a stage of each of its results, like the others
            results = [dataclasses.replace(r, timings={"detect": stage["detect"], **r.timings}) for r in results]
        if timings is not None:
            timings.update(stage)
        return results
