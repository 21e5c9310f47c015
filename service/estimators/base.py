"""The estimator protocol: one model card on one device, estimating a batch of images.

Top-down estimators (:class:`~service.pipeline.estimator.PoseEstimator`) need person boxes (from the client
or a detector); a bottom-up kind finds persons itself (``needs_boxes = False``) and the pipeline then skips
the detector. The engine and the batch jobs depend on this protocol only: they never read an estimator's
internals (its network, codec or crop stage).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from ..schemas import BoxesSource, PoseOptions, PoseResult

if TYPE_CHECKING:
    from ..pipeline.card import ModelCard


@dataclass(frozen=True)
class Counters:
    """Work done so far: network forwards (one per chunk; flip is inside it) and person crops."""

    forwards: int = 0
    crops: int = 0


@dataclass(frozen=True)
class WarmupInput:
    """One warm-up call: an RGB uint8 image ``(H, W, 3)`` and its boxes ``(M, 5)`` px, or ``None``."""

    image: NDArray[np.uint8]
    boxes: NDArray[np.float64] | None


@runtime_checkable
class Estimator(Protocol):
    card: ModelCard
    trained: bool
    #: whether every image needs person boxes (top-down) or the estimator finds persons itself
    needs_boxes: bool

    def estimate(
        self,
        images: Sequence[NDArray[np.uint8]],
        boxes: Sequence[NDArray[np.floating] | None],
        options: Sequence[PoseOptions] | PoseOptions | None = None,
        sources: Sequence[BoxesSource] | None = None,
        timings: dict[str, float] | None = None,
    ) -> list[PoseResult]:
        """One result per image, in order. ``timings`` receives the batch's stage durations (s)."""
        ...

    def warmup_inputs(self, max_batch: int) -> list[WarmupInput]:
        """Inputs that exercise every batch shape the engine will send (one call each)."""
        ...

    def counters(self) -> Counters: ...
