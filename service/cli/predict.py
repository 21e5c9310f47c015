"""``posesvc predict IMAGE``: run the pipeline in-process (or against a server with ``--url``), print JSON."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InvalidBoxes, InvalidInput
from .common import add_model_args, build_detector, build_estimator, load_model_card, settings_from_args

if TYPE_CHECKING:
    import numpy as np


def register(sub: Any) -> None:
    p = sub.add_parser("predict", help="estimate poses on one image and print JSON")
    p.add_argument("image", type=Path)
    p.add_argument(
        "--boxes", help="person boxes as JSON [[x, y, w, h(, score)], ...] or @file.json (skips the detector)"
    )
    add_model_args(p)
    p.add_argument("--render", type=Path, help="write the image with skeletons drawn to this PNG/JPEG")
    p.add_argument("--no-flip", action="store_true", help="disable the flip test")
    p.add_argument(
        "--no-exif", action="store_true", help="ignore EXIF orientation (as the official pipeline)"
    )
    p.add_argument("--format", choices=["posesvc", "coco"], default="posesvc")
    p.add_argument("--image-id", type=int, default=0, help="image_id for --format coco")
    p.add_argument("--min-score", type=float, default=0.0)
    p.add_argument("--max-persons", type=int)
    p.add_argument(
        "--url", help="send the image to a running server instead (http://host:port or grpc://host:port)"
    )
    p.add_argument("--api-key", help="API key for --url (or POSESVC_API_KEY)")
    p.add_argument("--model", help="with --url: the served model to use (default: the server's first)")
    p.set_defaults(func=run)


def parse_boxes(text: str | None) -> np.ndarray | None:
    """``--boxes``: JSON text or ``@file.json`` → ``(M, 5)`` float64 ``(x, y, w, h, score)``."""
    from ..schemas import parse_boxes_json

    if text is not None and text.startswith("@"):
        path = Path(text[1:])
        try:
            text = path.read_text()
        except OSError as exc:
            raise InvalidInput(f"--boxes {text}: cannot read {path}: {exc.strerror or exc}") from None
    try:
        return parse_boxes_json(text)
    except InvalidBoxes as exc:
        raise InvalidBoxes(f"--boxes: {exc}") from None


def read_input_image(path: Path) -> bytes:
    """The bytes of the image file the user named (one-line error when it cannot be read)."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidInput(f"cannot read image {path}: {exc.strerror or exc}") from None


def run(args: argparse.Namespace) -> int:
    boxes = parse_boxes(args.boxes)
    data = read_input_image(args.image)
    if args.url:
        return run_remote(args, data, boxes)
    from ..pipeline.image import decode_image
    from ..pipeline.pipeline import PosePipeline
    from ..pipeline.render import render_poses
    from ..schemas import PoseOptions

    s = settings_from_args(args)
    card = load_model_card(s)
    image = decode_image(data, honour_exif=not args.no_exif, max_pixels=s.max_image_pixels)
    estimator = build_estimator(s, card)
    detector = None if boxes is not None else build_detector(s)
    pipeline = PosePipeline(estimator, detector)
    opts = PoseOptions(flip=not args.no_flip, min_score=args.min_score, max_persons=args.max_persons)
    result = pipeline.run([image], [boxes], opts)[0]
    if detector is not None and not detector.trained:
        print(
            "WARNING: the person detector is untrained; few or no persons will be found. "
            "Pass --boxes, or provide detector weights (POSESVC_DETECTOR__WEIGHTS=path/to/yolov8n.pt).",
            file=sys.stderr,
        )
    out: Any = result.to_coco(args.image_id) if args.format == "coco" else result.to_dict(card.joint_names)
    if args.format != "coco":
        out["detector"] = None if detector is None else {"name": detector.name, "trained": detector.trained}
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")
    if args.render:
        from ..pipeline.render import encode_jpeg, encode_png

        drawn = render_poses(image, result, card.skeleton)
        args.render.parent.mkdir(parents=True, exist_ok=True)
        data = encode_jpeg(drawn) if args.render.suffix.lower() in (".jpg", ".jpeg") else encode_png(drawn)
        args.render.write_bytes(data)
        print(f"wrote {args.render}", file=sys.stderr)
    return 0


def run_remote(args: argparse.Namespace, data: bytes, boxes: np.ndarray | None) -> int:
    """``--url``: the same output, computed by a running server (REST or gRPC)."""
    import os

    from ..client import connect
    from ..pipeline.image import read_image_file
    from ..pipeline.render import encode_jpeg, encode_png, render_poses
    from ..schemas import PoseOptions

    client = connect(args.url, api_key=args.api_key or os.environ.get("POSESVC_API_KEY"))
    opts = PoseOptions(
        flip=False if args.no_flip else None, min_score=args.min_score, max_persons=args.max_persons
    )
    try:
        result = client.estimate(
            data, boxes=None if boxes is None else boxes.tolist(), options=opts, model=args.model
        )
    finally:
        client.close()
    out: Any = result.to_coco(args.image_id) if args.format == "coco" else result.to_dict()
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")
    if args.render:
        image = read_image_file(str(args.image), honour_exif=not args.no_exif)
        drawn = render_poses(image, result)  # the skeleton of the schema the server's joint names match
        args.render.parent.mkdir(parents=True, exist_ok=True)
        suffix = args.render.suffix.lower()
        args.render.write_bytes(encode_jpeg(drawn) if suffix in (".jpg", ".jpeg") else encode_png(drawn))
    return 0
