"""Protobuf ⇄ engine types. No I/O, no engine calls."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ...errors import ImageTooLarge, InvalidBoxes, InvalidInput, PoseServiceError
from ...schemas import PoseOptions, PoseResult
from ...streaming.runner import FrameIn, FrameOut
from ...streaming.session import StreamOptions
from .gen.posesvc.v1 import pose_pb2


def boxes_from_proto(boxes: Sequence[Any], max_boxes: int) -> np.ndarray:
    """Repeated ``Box`` → ``(M, 5)`` float64; the score defaults to 1 when unset."""
    if len(boxes) > max_boxes:
        raise InvalidBoxes(f"{len(boxes)} boxes given; the limit is {max_boxes} per image")
    return np.asarray(
        [[b.x, b.y, b.w, b.h, b.score if b.HasField("score") else 1.0] for b in boxes], dtype=np.float64
    ).reshape(-1, 5)


def options_from_proto(o: Any) -> PoseOptions:
    return PoseOptions(
        flip=o.flip if o.HasField("flip") else None,
        min_score=float(o.min_score),
        max_persons=int(o.max_persons) if o.max_persons else None,
        oks_nms=not o.disable_nms,
    )


def deadline_from_remaining(remaining: float | None) -> float | None:
    """gRPC ``time_remaining()`` (s, or None) → absolute ``time.monotonic()`` deadline."""
    return None if remaining is None else time.monotonic() + max(0.0, remaining)


def result_to_proto(result: PoseResult, joint_names: Sequence[str]) -> Any:
    """``joint_names``: used when the result does not carry its model's own (``result.joint_names``)."""
    joint_names = result.joint_names or joint_names
    persons = []
    for p in result.persons:
        kps = [
            pose_pb2.Keypoint(name=n, x=float(k[0]), y=float(k[1]), score=float(k[2]))
            for n, k in zip(joint_names, p.keypoints, strict=True)
        ]
        person = pose_pb2.Person(
            bbox=pose_pb2.Box(x=p.bbox[0], y=p.bbox[1], w=p.bbox[2], h=p.bbox[3], score=p.bbox_score),
            bbox_score=p.bbox_score,
            score=p.score,
            keypoints=kps,
        )
        if p.track_id is not None:
            person.track_id = p.track_id
        persons.append(person)
    return pose_pb2.EstimateResponse(
        image_size=pose_pb2.ImageSize(width=result.image_size[0], height=result.image_size[1]),
        persons=persons,
        model=pose_pb2.ModelInfo(name=result.model, trained=result.trained),
        boxes_source=result.boxes_source,
        timings_ms={k: v * 1000.0 for k, v in result.timings.items()},
    )


# ---------------------------------------------------------------------------------------------- streaming
def stream_options_from_proto(o: Any) -> StreamOptions:
    """``StreamOptions`` message → :class:`~service.streaming.session.StreamOptions` (zero = default)."""
    d = StreamOptions()
    try:
        return StreamOptions(
            pose=options_from_proto(o.pose),
            detect_every=int(o.detect_every) or d.detect_every,
            policy="latest" if o.policy == pose_pb2.LATEST else "block",
            max_in_flight=int(o.max_in_flight) or d.max_in_flight,
            smoothing=bool(o.smoothing),
            one_euro_min_cutoff=float(o.one_euro_min_cutoff) or d.one_euro_min_cutoff,
            one_euro_beta=float(o.one_euro_beta) or d.one_euro_beta,
            one_euro_d_cutoff=float(o.one_euro_d_cutoff) or d.one_euro_d_cutoff,
            tracker="iou" if o.tracker == pose_pb2.IOU else "oks",
            match_threshold=float(o.match_threshold) or d.match_threshold,
            max_missing=int(o.max_missing) or d.max_missing,
            box_enlarge=float(o.box_enlarge) or d.box_enlarge,
            model=o.model or None,
        )
    except ValueError as exc:
        raise InvalidInput(f"bad stream options: {exc}") from None


def frame_from_proto(f: Any, max_boxes: int, max_pixels: int) -> FrameIn:
    """``Frame`` → :class:`FrameIn`; a frame that cannot be read carries its error (answered as ERROR)."""
    fid = int(f.frame_id)
    ts = float(f.timestamp) if f.HasField("timestamp") else None
    try:
        boxes = boxes_from_proto(f.boxes, max_boxes) if f.use_boxes else None
        if f.HasField("raw") and f.raw.rgb:
            w, h, data = int(f.raw.width), int(f.raw.height), f.raw.rgb
            if w <= 0 or h <= 0 or w * h * 3 != len(data):
                raise InvalidInput(f"raw image: width×height×3 = {w}×{h}×3 ≠ {len(data)} bytes")
            if w * h > max_pixels:
                raise ImageTooLarge(f"the image has {w * h} pixels; the limit is {max_pixels}")
            image: bytes | np.ndarray = np.frombuffer(data, dtype=np.uint8).reshape(h, w, 3)
        elif f.image:
            image = bytes(f.image)
        else:
            raise InvalidInput("the frame has neither `image` nor `raw` pixels")
    except PoseServiceError as exc:
        return FrameIn(fid, b"", ts, None, error=exc)
    return FrameIn(fid, image, ts, boxes)


OUTCOMES = {"processed": pose_pb2.PROCESSED, "dropped": pose_pb2.DROPPED, "error": pose_pb2.ERROR}


def frame_out_to_proto(out: FrameOut, joint_names: Sequence[str]) -> Any:
    msg = pose_pb2.FramePoses(
        frame_id=out.frame_id,
        outcome=OUTCOMES[out.outcome],
        latency_ms=out.latency_s * 1000.0,
        detector_ran=out.detector_ran,
    )
    if out.result is not None:
        msg.result.CopyFrom(result_to_proto(out.result, joint_names))
    if out.error is not None:
        msg.error.CopyFrom(pose_pb2.ItemError(code=out.error.code, message=out.error.message))
    return msg
