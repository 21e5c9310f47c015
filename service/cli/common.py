"""Helpers shared by CLI commands: settings with flag overrides, the untrained policy, building the pipeline.

Imports nothing heavy at module level (no torch, OpenCV or Ultralytics), so ``posesvc --help`` and argument
errors answer at once; the commands import what they need when they run.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..pipeline.card import ModelCard
    from ..pipeline.detector import YoloPersonDetector
    from ..settings import Settings

UNTRAINED_HELP = (
    "run with random pose weights (seeded by the card: the same in every process) and an untrained detector "
    "when no weights are found; every result says trained=false (also POSESVC_ALLOW_UNTRAINED=true)"
)


def add_model_args(p: argparse.ArgumentParser | argparse._ArgumentGroup, *, several: bool = False) -> None:
    if several:
        p.add_argument("--card", action="append", help="model card name (models/<name>.toml) or path to a "
                       ".toml card; repeat to serve several models (the first is the default)")  # fmt: skip
    else:
        p.add_argument("--card", help="model card name (models/<name>.toml) or path to a .toml card")
    p.add_argument("--weights", type=Path, help="checkpoint file (default: the weights cache)")
    p.add_argument("--device", help="auto | cpu | cuda | cuda:N")
    p.add_argument("--precision", choices=["auto", "fp32", "bf16", "fp16"])
    p.add_argument(
        "--backend",
        choices=["auto", "torch", "onnxruntime", "openvino", "tensorrt"],
        help="inference backend (default: the card's, auto: the faster of ONNX Runtime / OpenVINO on CPU, TensorRT on CUDA, when "
        "installed and checked against torch, else torch; also POSESVC_MODEL__BACKEND)",
    )
    p.add_argument("--allow-untrained", action="store_true", default=None, help=UNTRAINED_HELP)


def settings_from_args(args: argparse.Namespace) -> Settings:
    from ..settings import Settings

    s = Settings()
    upd: dict[str, object] = {}
    if getattr(args, "device", None):
        upd["device"] = args.device
    if getattr(args, "precision", None):
        upd["precision"] = args.precision
    if getattr(args, "allow_untrained", None):
        upd["allow_untrained"] = True
    if upd:
        s = s.model_copy(update=upd)
    model_upd: dict[str, object] = {}
    card = getattr(args, "card", None)
    if isinstance(card, list):  # serve: --card repeated
        model_upd["card"] = card[0]
        model_upd["cards"] = card if len(card) > 1 else []
    elif card:
        model_upd["card"] = card
    if getattr(args, "weights", None):
        model_upd["weights"] = args.weights
    if getattr(args, "backend", None):
        model_upd["backend"] = args.backend
    if model_upd:
        s = s.model_copy(update={"model": s.model.model_copy(update=model_upd)})
    return s


def load_model_card(s: Settings) -> ModelCard:
    from ..pipeline.card import load_card

    return load_card(s.model.card, s.model.models_dir)


def untrained_warning(card: ModelCard) -> str:
    """The one line every command logs when it runs a card without weights."""
    return f"no weights for {card.name!r}: running UNTRAINED (random, seeded) weights; results say trained=false"


def build_estimator(s: Settings, card: ModelCard, *, warn: bool = True) -> Any:
    """The estimator on the first configured device (one-shot commands; the server builds one per device):
    a :class:`~service.pipeline.estimator.PoseEstimator` for a top-down card, a
    :class:`~service.pipeline.bottomup.BottomUpEstimator` for a bottom-up one.

    Raises:
        WeightsError: no weights and ``allow_untrained`` is off (the message names the ways to get them).
    """
    from ..engine import factory
    from ..engine.factory import pose_weights

    device = s.devices()[0]
    path = pose_weights(s, card, allow_untrained=s.allow_untrained)
    if path is None and warn:
        print(f"WARNING: {untrained_warning(card)}", file=sys.stderr)
    return factory.build_estimator(s, card, device, path, allow_untrained=s.allow_untrained)


def build_detector(s: Settings) -> YoloPersonDetector:
    """The YOLO person detector; without its weights, an untrained one only when ``allow_untrained``."""
    from ..engine import factory

    return factory.build_detector(
        s,
        s.devices()[0],
        fallback_untrained=s.allow_untrained,
        warn=lambda m: print(f"WARNING: {m}", file=sys.stderr),
    )


def default_output_dir(command: str) -> Path:
    """Where a command writes when the user names no place: a fresh folder under the posesvc cache
    (``~/.cache/posesvc/runs/<command>-<timestamp>``), never the current directory."""
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("posesvc")) / "runs" / f"{command}-{time.strftime('%Y%m%d-%H%M%S')}"
