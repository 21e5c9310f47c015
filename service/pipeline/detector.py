"""Person detection behind a small protocol; the default implementation is Ultralytics YOLO.

Boxes are returned as ``(M, 5)`` float64 ``(x, y, w, h, score)`` in original image pixels. Requests that
carry their own boxes never reach the detector.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from ..errors import WeightsError

log = logging.getLogger(__name__)


@runtime_checkable
class PersonDetector(Protocol):
    """Anything that finds persons in a batch of RGB images."""

    name: str
    trained: bool

    def detect(self, images: Sequence[NDArray[np.uint8]]) -> list[NDArray[np.float64]]:
        """``images``: RGB uint8 ``(H, W, 3)``. Returns per image ``(M, 5)`` ``(x, y, w, h, score)``."""
        ...


@dataclass(frozen=True)
class DetectorConfig:
    """Ultralytics detector settings.

    Attributes:
        weights: a local ``.pt`` path, an Ultralytics model name (``yolov8n.pt``, ``yolo11n.pt``: downloaded
            by Ultralytics itself on a machine with internet), or an architecture ``.yaml`` (untrained).
        conf: minimum confidence; iou: NMS IoU threshold; max_det: boxes per image; imgsz: inference size.
    """

    weights: str = "yolov8n.pt"
    conf: float = 0.25
    iou: float = 0.7
    max_det: int = 100
    imgsz: int = 640
    device: str = "cpu"
    half: bool = False


class YoloPersonDetector:
    """Ultralytics YOLO restricted to COCO class 0 (person), batched over images."""

    def __init__(self, config: DetectorConfig | None = None) -> None:
        self.config = cfg = config or DetectorConfig()
        try:
            from ultralytics import YOLO  # type: ignore[attr-defined]
        except ImportError as exc:  # pragma: no cover - ultralytics is a dependency
            raise WeightsError("the ultralytics package is required for the person detector") from exc
        self.trained = not cfg.weights.endswith((".yaml", ".yml"))
        if (
            self.trained
            and Path(cfg.weights).suffix == ".pt"
            and not Path(cfg.weights).exists()
            and "/" in cfg.weights
        ):
            raise WeightsError(f"detector weights not found: {cfg.weights}")
        try:
            self.model: Any = YOLO(cfg.weights)
        except Exception as exc:
            raise WeightsError(
                f"cannot load detector {cfg.weights!r}: {exc}. Give a local .pt path (POSESVC_DETECTOR__WEIGHTS), "
                "or run once with internet so Ultralytics can download it, or use yolov8n.yaml for untrained smoke runs"
            ) from exc
        self.name = Path(cfg.weights).stem
        if not self.trained:
            log.warning(
                "person detector %s is UNTRAINED (built from %s): it will find few or no persons",
                self.name,
                cfg.weights,
            )

    def detect(self, images: Sequence[NDArray[np.uint8]]) -> list[NDArray[np.float64]]:
        if not images:
            return []
        cfg = self.config
        # Ultralytics treats numpy arrays as BGR.
        bgr = [np.ascontiguousarray(im[..., ::-1]) for im in images]
        results = self.model.predict(
            bgr, classes=[0], conf=cfg.conf, iou=cfg.iou, max_det=cfg.max_det, imgsz=cfg.imgsz,
            device=cfg.device, verbose=False, **({"half": True} if cfg.half else {}),
        )  # fmt: skip
        out = []
        for r in results:
            xyxy = r.boxes.xyxy.cpu().numpy().astype(np.float64)
            conf = r.boxes.conf.cpu().numpy().astype(np.float64)
            boxes = np.stack(
                [xyxy[:, 0], xyxy[:, 1], xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1], conf], axis=1
            ) if len(conf) else np.zeros((0, 5), dtype=np.float64)  # fmt: skip
            keep = np.isfinite(boxes).all(axis=1) & (boxes[:, 2] > 0) & (boxes[:, 3] > 0)
            out.append(boxes[keep])
        return out
