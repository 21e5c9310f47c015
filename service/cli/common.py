"""Helpers shared by CLI commands: settings with flag overrides, building the pipeline."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..engine import factory
from ..engine.factory import pose_weights
from ..pipeline.card import ModelCard, load_card
from ..pipeline.detector import YoloPersonDetector
from ..pipeline.estimator import PoseEstimator
from ..pipeline.weights import missing_weights_message
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
    """The estimator on the first configured device (one-shot commands; the server builds one per device)."""
    device = s.devices()[0]
    path = pose_weights(s, card, allow_untrained=allow_untrained)
    if path is None and warn:
        print(
            f"WARNING: no weights for {card.name!r}: running with UNTRAINED (random) weights; "
            "the keypoints are meaningless. "
            + missing_weights_message(card, s.weights_dir).split("\n", 1)[1],
            file=sys.stderr,
        )
    return factory.build_estimator(s, card, device, path, allow_untrained=allow_untrained)


def build_detector(s: Settings, *, fallback_untrained: bool) -> YoloPersonDetector:
    """The YOLO person detector; if its weights cannot be had and ``fallback_untrained``, an untrained one."""
    return factory.build_detector(
        s,
        s.devices()[0],
        fallback_untrained=fallback_untrained,
        warn=lambda m: print(f"WARNING: {m}", file=sys.stderr),
    )
