"""Protobuf ⇄ engine types. No I/O, no engine calls."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from ...errors import InvalidBoxes
from ...schemas import PoseOptions, PoseResult
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
