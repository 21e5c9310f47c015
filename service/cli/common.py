"""Helpers shared by CLI commands: settings with flag overrides, building the pipeline."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..pipeline.card import ModelCard, load_card
from ..pipeline.detector import DetectorConfig, YoloPersonDetector
from ..pipeline.estimator import EstimatorConfig, PoseEstimator
from ..pipeline.weights import missing_weights_message, resolve_weights
from ..settings import Settings


def add_model_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--card", help="model card name (models/<name>.toml) or path to a .toml card")
    p.add_argument("--weights", type=Path, help="checkpoint file (default: the weights cache)")
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"])


def settings_from_args(args: argparse.Namespace) -> Settings:
    s = Settings()
    upd: dict[str, object] = {}
    if getattr(args, "device", None):
        upd["device"] = args.device
    if getattr(args, "precision", None):
        upd["precision"] = args.precision
    if upd:
        s = s.model_copy(update=upd)
    model_upd: dict[str, object] = {}
    if getattr(args, "card", None):
        model_upd["card"] = args.card
    if getattr(args, "weights", None):
        model_upd["weights"] = args.weights
    if model_upd:
        s = s.model_copy(update={"model": s.model.model_copy(update=model_upd)})
    return s


def load_model_card(s: Settings) -> ModelCard:
    return load_card(s.model.card, s.model.models_dir)


def build_estimator(
    s: Settings, card: ModelCard, *, allow_untrained: bool, warn: bool = True
) -> PoseEstimator:
    device = s.devices()[0]
    path = resolve_weights(card, s.weights_dir, s.model.weights)
    if path is None and not allow_untrained:
        from ..errors import WeightsError

        raise WeightsError(missing_weights_message(card, s.weights_dir))
    if path is None and warn:
        print(
            f"WARNING: no weights for {card.name!r}: running with UNTRAINED (random) weights; "
            "the keypoints are meaningless. "
            + missing_weights_message(card, s.weights_dir).split("\n", 1)[1],
            file=sys.stderr,
        )
    cfg = EstimatorConfig(
        max_batch_crops=s.engine.max_batch_crops,
        precision=s.precision_for(device),
        channels_last=s.channels_last,
        flip_default=s.flip_test,
        max_offset=s.max_offset,
    )
    return PoseEstimator.from_card(card, path, device=device, config=cfg, allow_untrained=allow_untrained)


def build_detector(s: Settings, *, fallback_untrained: bool) -> YoloPersonDetector:
    """The YOLO person detector; if its weights cannot be had and ``fallback_untrained``, an untrained one."""
    from ..errors import WeightsError

    cfg = DetectorConfig(
        weights=s.detector.weights, conf=s.detector.conf, iou=s.detector.iou, max_det=s.detector.max_det,
        imgsz=s.detector.imgsz, device=s.devices()[0],
    )  # fmt: skip
    try:
        return YoloPersonDetector(cfg)
    except WeightsError as exc:
        if not fallback_untrained:
            raise
        yaml = Path(cfg.weights).stem + ".yaml"
        print(
            f"WARNING: {exc}\nWARNING: falling back to an UNTRAINED detector built from {yaml}",
            file=sys.stderr,
        )
        return YoloPersonDetector(DetectorConfig(**{**cfg.__dict__, "weights": yaml}))
