"""Typed request/result objects shared by every layer (imports nothing else from the project).

Units: pixels of the original image; boxes are ``(x, y, w, h)``; keypoints are ``(K, 3)`` float32
``(x, y, score)`` in COCO joint order; timings are seconds.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

BoxesSource = Literal["client", "detector", "tracker", "none"]


@dataclass(frozen=True)
class PoseOptions:
    """Per-request options.

    Attributes:
        flip: run the flip test (``None`` = the server's default).
        min_score: drop persons whose (rescored) score is below this.
        max_persons: keep at most this many persons (highest scores first); ``None`` = all.
        oks_nms: apply OKS-NMS (threshold from settings) as the official evaluation does.
    """

    flip: bool | None = None
    min_score: float = 0.0
    max_persons: int | None = None
    oks_nms: bool = True


def _new_request_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, eq=False)
class PoseRequest:
    """One image to estimate poses on: the serving engine's only input, whatever the transport.

    Attributes:
        image: encoded image bytes (JPEG/PNG/WebP; decoded by the engine off the event loop, EXIF orientation
            per settings) or an already decoded ``(H, W, 3)`` uint8 **RGB** array.
        boxes: client person boxes ``(M, 4|5)`` ``(x, y, w, h[, score])`` in image px; ``None`` = run the
            detector; an empty array = no persons (no pose forward, empty result).
        options: per-request :class:`PoseOptions`.
        deadline: absolute :func:`time.monotonic` time (s) after which the result is useless; ``None`` = the
            engine's default (``engine.default_deadline_s`` after submission).
        request_id: for logs and tracing (a random hex id unless given).
        stream_id: video stream this frame belongs to (streaming transports; ``None`` otherwise).
        frame_id: frame number within ``stream_id``.
        boxes_source: where the given ``boxes`` came from when not from the client (``"tracker"``: boxes
            propagated by a stream's tracker); the result's ``boxes_source`` is set to it. ``None`` = client.
    """

    image: bytes | NDArray[np.uint8]
    boxes: NDArray[np.floating] | None = None
    options: PoseOptions = field(default_factory=PoseOptions)
    deadline: float | None = None
    request_id: str = field(default_factory=_new_request_id)
    stream_id: str | None = None
    frame_id: int | None = None
    boxes_source: BoxesSource | None = None
    #: the served model to use (a card name); ``None`` = the server's default (its first card)
    model: str | None = None
    #: also draw the result on the image (boxes, skeletons, scores): ``png`` or ``jpeg`` bytes in
    #: ``PoseResult.rendered``; ``None`` = no drawing
    render: Literal["png", "jpeg"] | None = None


@dataclass(frozen=True)
class Person:
    """One detected person.

    Attributes:
        bbox: ``(x, y, w, h)`` box the crop was made from (client or detector box), image px.
        bbox_score: detector (or client) box score.
        score: person score = ``bbox_score × mean(keypoint scores > 0.2)`` (DarkPose rescoring).
        keypoints: ``(K, 3)`` float32 ``(x, y, score)``; scores are raw heatmap maxima.
        box_index: index of the box in the list the pipeline received (client order or detector order).
        track_id: stable id within a video stream (``None`` outside streams).
    """

    bbox: tuple[float, float, float, float]
    bbox_score: float
    score: float
    keypoints: NDArray[np.float32]
    box_index: int = -1
    track_id: int | None = None


@dataclass(frozen=True)
class PoseResult:
    """Result for one image."""

    image_size: tuple[int, int]  # (width, height)
    persons: tuple[Person, ...]
    model: str
    trained: bool
    boxes_source: BoxesSource = "client"
    timings: Mapping[str, float] = field(default_factory=dict)
    #: names of the K joints of every person's keypoints, in order (the model's keypoint schema)
    joint_names: tuple[str, ...] = ()
    #: the image with the result drawn (encoded as the request's ``render`` asked), else ``None``
    rendered: bytes | None = None

    def to_coco(self, image_id: int, category_id: int = 1) -> list[dict[str, Any]]:
        """COCO keypoint results entries (``image_id, category_id, keypoints[3K], score``)."""
        return [
            {
                "image_id": int(image_id),
                "category_id": int(category_id),
                "keypoints": [float(v) for v in p.keypoints.reshape(-1)],
                "score": float(p.score),
            }
            for p in self.persons
        ]

    def to_dict(self, joint_names: Sequence[str] | None = None) -> dict[str, Any]:
        """JSON-ready dict in the posesvc response format (joint names: the result's own by default)."""
        if joint_names is None:
            joint_names = self.joint_names
        return {
            "image_size": {"width": self.image_size[0], "height": self.image_size[1]},
            "model": {"name": self.model, "trained": self.trained},
            "boxes_source": self.boxes_source,
            "persons": [person_to_dict(p, joint_names) for p in self.persons],
            "timings_ms": {k: round(v * 1000.0, 3) for k, v in self.timings.items()},
        }


def person_to_dict(p: Person, joint_names: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "bbox": [float(v) for v in p.bbox],
        "bbox_score": float(p.bbox_score),
        "score": float(p.score),
        "keypoints": [
            {"name": n, "x": float(k[0]), "y": float(k[1]), "score": float(k[2])}
            for n, k in zip(joint_names, p.keypoints, strict=True)
        ],
    }
    if p.track_id is not None:
        out["track_id"] = p.track_id
    return out


def parse_boxes_json(text: str | None, max_boxes: int | None = None) -> NDArray[np.float64] | None:
    """Boxes as JSON text (a REST field, a CLI flag) → ``(M, 5)`` float64 ``(x, y, w, h, score)`` px, the score
    1 where absent; ``None`` for no text. Checked against the image size later (``pipeline.inputs``).

    Raises:
        InvalidBoxes: not JSON, not a list of 4- or 5-number lists, or more than ``max_boxes``.
    """
    import json

    from .errors import InvalidBoxes

    if text is None:
        return None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidBoxes(f"boxes is not valid JSON: {exc.msg} at position {exc.pos}") from None
    if not isinstance(data, list):
        raise InvalidBoxes("boxes must be a JSON list of [x, y, w, h] or [x, y, w, h, score]")
    if max_boxes is not None and len(data) > max_boxes:
        raise InvalidBoxes(f"{len(data)} boxes given; the limit is {max_boxes} per image")
    rows = []
    for i, b in enumerate(data):
        if (
            not isinstance(b, list)
            or len(b) not in (4, 5)
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in b)
        ):
            raise InvalidBoxes(
                f"box {i} must be [x, y, w, h] or [x, y, w, h, score] numbers, got {json.dumps(b)[:80]}"
            )
        rows.append([float(v) for v in b] + ([1.0] if len(b) == 4 else []))
    return np.asarray(rows, dtype=np.float64).reshape(-1, 5)
