"""Per-stream state: options, tracker, smoother, the detect-every counter and box propagation.

Everything here runs on the event loop, sequentially per stream, in frame order. Units: px, s.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from ..schemas import Person, PoseOptions, PoseResult
from .smoothing import KeypointSmoother
from .tracker import Tracker, TrackerKind

DropPolicy = Literal["block", "latest"]


@dataclass(frozen=True)
class StreamOptions:
    """Options of one stream (fixed at its first frame).

    Attributes:
        pose: pose options applied to every frame.
        detect_every: run the detector on every Nth frame (1 = every frame); in between, boxes are propagated
            from the previous frame's keypoints.
        policy: ``block`` (stop reading frames while the window is full) or ``latest`` (drop the oldest frame
            not yet started).
        max_in_flight: frames submitted to the engine and not finished; also the size of the queue of frames
            received and not yet submitted.
        smoothing: One-Euro smoothing of keypoints; ``one_euro_min_cutoff`` (Hz), ``one_euro_beta`` (1/px),
            ``one_euro_d_cutoff`` (Hz).
        tracker: ``oks`` or ``iou`` association; ``match_threshold`` the minimum similarity; ``max_missing`` frames
            a track may go unmatched.
        box_enlarge: scale of a box propagated from keypoints (about its centre).
        keypoint_threshold: joints scoring above this define a propagated box (at least 2 needed, else the
            previous box is kept).
        fps: frame rate assumed for smoothing when frames carry no timestamp (timestamp = frame_id / fps).
        model: the served model for every frame (a card name; ``None`` = the server's default).
    """

    pose: PoseOptions = field(default_factory=PoseOptions)
    detect_every: int = 1
    policy: DropPolicy = "block"
    max_in_flight: int = 4
    smoothing: bool = False
    one_euro_min_cutoff: float = 1.0
    one_euro_beta: float = 0.007
    one_euro_d_cutoff: float = 1.0
    tracker: TrackerKind = "oks"
    match_threshold: float = 0.3
    max_missing: int = 10
    box_enlarge: float = 1.25
    keypoint_threshold: float = 0.2
    fps: float = 30.0
    model: str | None = None

    def __post_init__(self) -> None:
        if self.detect_every < 1 or self.max_in_flight < 1 or self.max_missing < 0:
            raise ValueError("detect_every and max_in_flight must be ≥ 1, max_missing ≥ 0")
        if self.box_enlarge <= 0 or self.fps <= 0:
            raise ValueError("box_enlarge and fps must be > 0")


def boxes_from_keypoints(
    keypoints: NDArray[np.floating],
    previous: NDArray[np.floating],
    enlarge: float,
    threshold: float,
    image_size: tuple[int, int] | None = None,
) -> NDArray[np.float64]:
    """Boxes for the next frame: per person the bounding box of its joints scoring above ``threshold``,
    scaled by ``enlarge`` about its centre; fewer than 2 such joints → the previous box (unchanged).

    Args:
        keypoints: ``(M, K, 3)``; previous: ``(M, ≥4)`` boxes ``(x, y, w, h)`` px; image_size ``(W, H)``: the
            result is clipped to the image (a box must keep ≥ 1 px inside).

    Returns: ``(M, 5)`` float64 ``(x, y, w, h, score=1)``.
    """
    kps = np.asarray(keypoints, dtype=np.float64)
    out = np.ones((len(kps), 5), dtype=np.float64)
    if len(kps) == 0:
        return out
    prev = np.asarray(previous, dtype=np.float64).reshape(len(kps), -1)
    for i, kp in enumerate(kps):
        ok = kp[:, 2] > threshold
        if ok.sum() >= 2:
            x0, y0 = kp[ok, 0].min(), kp[ok, 1].min()
            x1, y1 = kp[ok, 0].max(), kp[ok, 1].max()
            cx, cy = (x0 + x1) / 2.0, (y0 + y1) / 2.0
            w, h = max(x1 - x0, 1.0) * enlarge, max(y1 - y0, 1.0) * enlarge
            box = np.array([cx - w / 2.0, cy - h / 2.0, w, h])
        else:
            box = prev[i, :4]
        if image_size is not None:
            wi, hi = image_size
            xa, ya = np.clip(box[0], 0.0, wi - 1.0), np.clip(box[1], 0.0, hi - 1.0)
            xb, yb = (
                np.clip(box[0] + box[2], xa + 1.0, float(wi)),
                np.clip(box[1] + box[3], ya + 1.0, float(hi)),
            )
            box = np.array([xa, ya, xb - xa, yb - ya])
        out[i, :4] = box
    return out


@dataclass
class StreamSession:
    """State of one open stream (created by :class:`~service.streaming.registry.StreamRegistry`).

    Attributes:
        stream_id: server-assigned id; client: who opened it (for per-client limits); options: fixed options.
        frames: frames received; detector_frames / tracked_frames / dropped / errors: per-outcome counts.
        last_seen: :func:`time.monotonic` (s) of the last frame received (idle TTL).
        sigmas: OKS sigmas of the served model's keypoint schema, for tracking (``None``: COCO's 17).
    """

    stream_id: str
    options: StreamOptions
    client: str = ""
    sigmas: tuple[float, ...] | None = None
    frames: int = 0
    detector_frames: int = 0
    client_box_frames: int = 0
    tracked_frames: int = 0
    dropped: int = 0
    errors: int = 0
    last_seen: float = field(default_factory=time.monotonic)
    since_detect: int | None = None  # frames since the last detector/client-box frame; None = never
    tracker: Tracker = field(init=False)
    smoother: KeypointSmoother | None = field(init=False)
    _next_boxes: NDArray[np.float64] | None = field(default=None, init=False)
    _image_size: tuple[int, int] | None = field(default=None, init=False)
    _num_joints: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        o = self.options
        self.tracker = Tracker(o.tracker, o.match_threshold, o.max_missing, o.keypoint_threshold, self.sigmas)
        self.smoother = (
            KeypointSmoother(o.one_euro_min_cutoff, o.one_euro_beta, o.one_euro_d_cutoff)
            if o.smoothing
            else None
        )

    def touch(self) -> None:
        self.last_seen = time.monotonic()

    def due_detection(self) -> bool:
        """Whether the detect-every counter says the next frame (without client boxes) runs the detector."""
        return self.since_detect is None or self.since_detect + 1 >= self.options.detect_every

    def needs_detection(self) -> bool:
        """Whether the next frame (without client boxes) must run the detector: it is due, or there are no
        boxes to propagate (no person in the previous frame)."""
        return self.due_detection() or self._next_boxes is None or len(self._next_boxes) == 0

    def plan(self, client_boxes: bool) -> tuple[str, NDArray[np.float64] | None]:
        """Decide how the next submitted frame gets its boxes: ``("client", None)`` (use the client's),
        ``("detector", None)`` or ``("tracker", boxes (M, 5))``. Call once per submitted frame, in order; a
        ``tracker`` plan must only be made once the previous frame's result was applied (:meth:`apply`)."""
        if client_boxes:
            self.since_detect = 0
            self.client_box_frames += 1
            return "client", None
        if self.needs_detection():
            self.since_detect = 0
            self.detector_frames += 1
            return "detector", None
        assert self._next_boxes is not None and self.since_detect is not None
        self.since_detect += 1
        self.tracked_frames += 1
        return "tracker", self._next_boxes.copy()

    def apply(self, result: PoseResult, timestamp: float) -> PoseResult:
        """Track (and smooth) one frame's result, in frame order; remember boxes for the next frame.

        ``timestamp``: the frame's time (s). Returns the result with ``track_id`` set (and smoothed keypoints).
        """
        persons = result.persons
        self._image_size = result.image_size
        if persons:
            boxes = np.array([p.bbox for p in persons], dtype=np.float64)
            kps = np.stack([p.keypoints for p in persons]).astype(np.float64)
            self._num_joints = kps.shape[1]
        else:
            boxes = np.zeros((0, 4))
            kps = np.zeros((0, self._num_joints, 3))
        ids = self.tracker.update(boxes, kps)
        # Boxes for the next frame come from the raw (unsmoothed) keypoints of the persons seen now.
        self._next_boxes = boxes_from_keypoints(
            kps, boxes, self.options.box_enlarge, self.options.keypoint_threshold, result.image_size
        )
        out: list[Person] = []
        for p, tid in zip(persons, ids, strict=True):
            kp = p.keypoints
            if self.smoother is not None:
                kp = self.smoother(tid, kp, timestamp)
            out.append(dataclasses.replace(p, keypoints=kp, track_id=tid))
        if self.smoother is not None:
            self.smoother.forget({t.track_id for t in self.tracker.tracks})
        return dataclasses.replace(result, persons=tuple(out))

    def skip(self) -> None:
        """A frame produced no result (dropped or failed): tracks age by one frame, boxes are kept."""
        self.tracker.update(np.zeros((0, 4)), np.zeros((0, self._num_joints, 3)))
