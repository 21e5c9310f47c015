"""Building pipelines from :class:`~service.settings.Settings`: one model copy per device.

Shared by ``posesvc serve`` (through :class:`SettingsPipelineFactory`) and the one-shot CLI commands.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from ..errors import WeightsError
from ..estimators.base import Estimator
from ..pipeline.card import ModelCard
from ..pipeline.crop import TorchCrop
from ..pipeline.detector import DetectorConfig, YoloPersonDetector
from ..pipeline.estimator import EstimatorConfig, PoseEstimator
from ..pipeline.pipeline import PosePipeline
from ..pipeline.weights import missing_weights_message, resolve_weights
from ..settings import Settings

log = logging.getLogger(__name__)


def estimator_config(s: Settings, device: str) -> EstimatorConfig:
    """Compute settings for ``device``: fp16 on CUDA / fp32 on CPU unless ``precision`` says otherwise."""
    return EstimatorConfig(
        max_batch_crops=s.engine.max_batch_crops,
        precision=s.precision_for(device),
        channels_last=s.channels_last,
        flip_default=s.flip_test,
        max_offset=s.max_offset,
    )


def pose_weights(s: Settings, card: ModelCard, *, allow_untrained: bool) -> Path | None:
    """The checkpoint to load (explicit ``model.weights``, else the cache); ``None`` when running untrained.

    Raises:
        WeightsError: no weights and not ``allow_untrained`` (the message names the three ways to get them).
    """
    path = resolve_weights(card, s.weights_dir, s.model.weights)
    if path is None and not allow_untrained:
        raise WeightsError(missing_weights_message(card, s.weights_dir))
    return path


def download_missing_weights(
    s: Settings, card: ModelCard, *, progress: bool = True, warn: Callable[[str], None] = log.warning
) -> Path | None:
    """First start: fetch the card's checkpoint when it is not here, the card has a download URL and
    ``download`` is on (resumable, sha256-checked, into the weights cache; ``weights_mirror`` when set).

    Returns the weights now present (``None``: none, and nothing was fetched). A failed download raises
    :class:`WeightsError` naming the reason and the other ways, unless ``allow_untrained`` (then ``warn`` and
    ``None``: the caller runs untrained, as it would offline).
    """
    from ..pipeline.weights import fetch

    path = resolve_weights(card, s.weights_dir, s.model.weights)
    if path is not None or not s.download or not card.checkpoint.url or not card.checkpoint.sha256:
        return path
    try:
        return fetch(card, s.weights_dir, progress=progress, mirror=s.weights_mirror)
    except WeightsError as exc:
        if not s.allow_untrained:
            raise WeightsError(f"{exc}. {missing_weights_message(card, s.weights_dir)}") from None
        warn(f"{exc}")
        return None


def download_missing_detector(s: Settings, *, warn: Callable[[str], None] = log.warning) -> None:
    """First start: fetch the detector's Ultralytics release weights (``yolov8n.pt``) when ``download`` is on
    and they are not here; a failure is left to the detector's own fallback (``allow_untrained``) or error."""
    from ..pipeline.detector import fetch_detector, resolve_detector_weights

    name = s.detector.weights
    if not s.download or Path(name).name != name or not name.endswith(".pt"):
        return
    try:
        resolve_detector_weights(name, s.weights_dir)
        return
    except WeightsError:
        pass
    try:
        fetch_detector(name, s.weights_dir)
    except WeightsError as exc:
        warn(f"{exc}")


def build_estimator(
    s: Settings, card: ModelCard, device: str, weights: Path | None, *, allow_untrained: bool
) -> Estimator:
    """The card's net with ``weights`` (strict, weights-only load) on ``device``, through the configured
    backend (``model.backend``, else the card's), crops per ``crop``. A bottom-up card gets the bottom-up
    estimator (torch), with its rescoring net when ``[bottomup] rescore_filename`` is in the weights folder."""
    cfg = estimator_config(s, device)
    if card.kind == "bottomup":
        from ..pipeline.bottomup import BottomUpEstimator

        name = str(card.bottomup.get("rescore_filename", ""))
        rescore = s.weights_dir / name if name and (s.weights_dir / name).is_file() else None
        return BottomUpEstimator.from_card(card, weights, device=device, config=cfg,
                                           allow_untrained=allow_untrained, rescore_weights=rescore)  # fmt: skip
    use_device_crops = s.crop == "device" or (s.crop == "auto" and device.startswith("cuda"))
    return PoseEstimator.from_card(
        card, weights, device=device, config=cfg, allow_untrained=allow_untrained,
        backend=s.model.backend or card.backend, threads=s.cpu_threads, export_dir=s.weights_dir / "exports",
        compile=s.torch_compile, crop_stage=TorchCrop(device) if use_device_crops else None,
    )  # fmt: skip


def build_detector(
    s: Settings, device: str, *, fallback_untrained: bool, warn: Callable[[str], None] = log.warning
) -> YoloPersonDetector:
    """The YOLO person detector on ``device``.

    If its weights cannot be had (missing file; a model name that cannot be downloaded offline) this raises
    :class:`WeightsError`, unless ``fallback_untrained``: then it builds the same architecture from its
    ``.yaml`` with random weights (e.g. ``yolov8n.yaml``) and calls ``warn``.
    """
    cfg = DetectorConfig(
        weights=s.detector.weights, conf=s.detector.conf, iou=s.detector.iou, max_det=s.detector.max_det,
        imgsz=s.detector.imgsz, device=device, half=s.precision_for(device) == "fp16",
        weights_dir=s.weights_dir,
    )  # fmt: skip
    try:
        return YoloPersonDetector(cfg)
    except WeightsError as exc:
        if not fallback_untrained:
            raise
        yaml = Path(cfg.weights).stem + ".yaml"
        warn(f"{exc}\nfalling back to an UNTRAINED detector built from {yaml}")
        return YoloPersonDetector(DetectorConfig(**{**cfg.__dict__, "weights": yaml}))


class SharedDetector:
    """One detector used by the workers of several models on one device: calls are serialised."""

    def __init__(self, detector: YoloPersonDetector) -> None:
        self.inner = detector
        self.name = detector.name
        self.trained = detector.trained
        self._lock = threading.Lock()

    def detect(self, images: Sequence[NDArray[np.uint8]]) -> list[NDArray[np.float64]]:
        with self._lock:
            return self.inner.detect(images)


class DetectorPool:
    """The person detector, built once per device and shared by every model served (as in a Triton
    ensemble, the detector is one model, not a copy per pose model)."""

    def __init__(self, settings: Settings, *, fallback_untrained: bool) -> None:
        self.settings = settings
        self.fallback_untrained = fallback_untrained
        self._by_device: dict[str, SharedDetector] = {}
        self._lock = threading.Lock()

    def get(self, device: str) -> SharedDetector:
        with self._lock:
            det = self._by_device.get(device)
            if det is None:
                det = SharedDetector(
                    build_detector(self.settings, device, fallback_untrained=self.fallback_untrained)
                )
                self._by_device[device] = det
            return det


class SettingsPipelineFactory:
    """Builds a :class:`PosePipeline` per device from settings; an engine's ``factory``.

    Args:
        settings: the service settings (model, detector, precision...).
        card: the model card.
        allow_untrained: random pose weights when none are found, and an untrained detector fallback.
        detector: build a person detector (``False``: clients must send boxes).
        detectors: a pool shared with other models' factories (default: one of its own).

    Raises:
        WeightsError: at construction, when the pose weights are missing and not ``allow_untrained``.
    """

    def __init__(
        self,
        settings: Settings,
        card: ModelCard,
        *,
        allow_untrained: bool = False,
        detector: bool = True,
        detectors: DetectorPool | None = None,
    ) -> None:
        self.settings = settings
        self.card = card
        self.allow_untrained = allow_untrained
        self.with_detector = detector
        self.detectors = detectors or DetectorPool(settings, fallback_untrained=allow_untrained)
        self.weights = pose_weights(settings, card, allow_untrained=allow_untrained)
        self._preloaded: dict[str, PosePipeline] = {}
        self._lock = threading.Lock()

    def preload(self, device: str) -> PosePipeline:
        """Build now (to fail fast on bad weights or a missing detector); the next :meth:`__call__` for
        ``device`` returns this pipeline instead of building another."""
        pipe = self.build(device)
        with self._lock:
            self._preloaded[device] = pipe
        return pipe

    def __call__(self, device: str) -> PosePipeline:
        with self._lock:
            pipe = self._preloaded.pop(device, None)
        return pipe if pipe is not None else self.build(device)

    def build(self, device: str) -> PosePipeline:
        est = build_estimator(
            self.settings, self.card, device, self.weights, allow_untrained=self.allow_untrained
        )
        det = self.detectors.get(device) if self.with_detector else None
        return PosePipeline(est, det)
