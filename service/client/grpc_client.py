"""gRPC client (synchronous channel)."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

import grpc
import numpy as np

from ..schemas import Person, PoseOptions, PoseResult
from ..streaming.session import StreamOptions
from ..transport.grpc.gen.posesvc.v1 import pose_pb2, pose_pb2_grpc
from .base import Boxes, ClientError

T = TypeVar("T")


def result_from_proto(r: Any) -> PoseResult:
    persons = tuple(
        Person(
            bbox=(p.bbox.x, p.bbox.y, p.bbox.w, p.bbox.h),
            bbox_score=p.bbox_score,
            score=p.score,
            keypoints=np.array([[k.x, k.y, k.score] for k in p.keypoints], dtype=np.float32),
            track_id=p.track_id if p.HasField("track_id") else None,
        )
        for p in r.persons
    )
    return PoseResult(
        image_size=(r.image_size.width, r.image_size.height),
        persons=persons,
        model=r.model.name,
        trained=r.model.trained,
        boxes_source=r.boxes_source or "client",  # type: ignore[arg-type]
        timings={k: v / 1000.0 for k, v in r.timings_ms.items()},
        joint_names=tuple(k.name for k in r.persons[0].keypoints) if r.persons else (),
    )


def pose_options_to_proto(o: PoseOptions | None) -> Any:
    o = o or PoseOptions()
    opts = pose_pb2.PoseOptions(
        min_score=o.min_score, max_persons=o.max_persons or 0, disable_nms=not o.oks_nms
    )
    if o.flip is not None:
        opts.flip = o.flip
    return opts


def _boxes_to_proto(boxes: Boxes, out: Any) -> None:
    for b in [] if boxes is None else boxes:
        box = pose_pb2.Box(x=float(b[0]), y=float(b[1]), w=float(b[2]), h=float(b[3]))
        if len(b) > 4:
            box.score = float(b[4])
        out.append(box)


def stream_options_to_proto(o: StreamOptions) -> Any:
    return pose_pb2.StreamOptions(
        pose=pose_options_to_proto(o.pose),
        detect_every=o.detect_every,
        policy=pose_pb2.LATEST if o.policy == "latest" else pose_pb2.BLOCK,
        max_in_flight=o.max_in_flight,
        smoothing=o.smoothing,
        one_euro_min_cutoff=o.one_euro_min_cutoff,
        one_euro_beta=o.one_euro_beta,
        one_euro_d_cutoff=o.one_euro_d_cutoff,
        tracker=pose_pb2.IOU if o.tracker == "iou" else pose_pb2.OKS,
        match_threshold=o.match_threshold,
        max_missing=o.max_missing,
        box_enlarge=o.box_enlarge,
        model=o.model or "",
    )


@dataclass
class StreamFrame:
    """One frame to stream: encoded bytes or an ``(H, W, 3)`` uint8 RGB array (sent raw); optional client
    boxes ``[[x, y, w, h(, score)], ...]`` px; optional timestamp (s)."""

    frame_id: int
    image: bytes | np.ndarray
    boxes: Boxes | np.ndarray = None
    timestamp: float | None = None


@dataclass
class StreamAnswer:
    """The server's answer to one frame (``outcome``: processed, dropped or error)."""

    frame_id: int
    outcome: str
    result: PoseResult | None
    error: ClientError | None
    latency_ms: float
    detector_ran: bool


def frame_to_proto(f: StreamFrame, options: StreamOptions | None) -> Any:
    msg = pose_pb2.Frame(frame_id=f.frame_id, use_boxes=f.boxes is not None)
    if isinstance(f.image, np.ndarray):
        a = np.ascontiguousarray(f.image, dtype=np.uint8)
        msg.raw.CopyFrom(pose_pb2.RawImage(width=a.shape[1], height=a.shape[0], rgb=a.tobytes()))
    else:
        msg.image = f.image
    if f.timestamp is not None:
        msg.timestamp = f.timestamp
    _boxes_to_proto(f.boxes, msg.boxes)  # type: ignore[arg-type]
    if options is not None:
        msg.options.CopyFrom(stream_options_to_proto(options))
    return msg


_OUTCOMES = {pose_pb2.PROCESSED: "processed", pose_pb2.DROPPED: "dropped", pose_pb2.ERROR: "error"}


def answer_from_proto(r: Any) -> StreamAnswer:
    outcome = _OUTCOMES.get(r.outcome, "error")
    return StreamAnswer(
        frame_id=int(r.frame_id),
        outcome=outcome,
        result=result_from_proto(r.result) if outcome == "processed" else None,
        error=ClientError(r.error.code, r.error.message, "OK") if r.HasField("error") else None,
        latency_ms=float(r.latency_ms),
        detector_ran=bool(r.detector_ran),
    )


def request_to_proto(image: bytes, boxes: Boxes, options: PoseOptions | None, model: str | None = None) -> Any:
    o = options or PoseOptions()
    opts = pose_pb2.PoseOptions(
        min_score=o.min_score, max_persons=o.max_persons or 0, disable_nms=not o.oks_nms
    )
    if o.flip is not None:
        opts.flip = o.flip
    req = pose_pb2.EstimateRequest(image=image, options=opts, use_boxes=boxes is not None, model=model or "")
    for b in boxes or []:
        box = pose_pb2.Box(x=b[0], y=b[1], w=b[2], h=b[3])
        if len(b) > 4:
            box.score = b[4]
        req.boxes.append(box)
    return req


def _error(exc: grpc.RpcError) -> ClientError:
    details = exc.details() or ""  # type: ignore[attr-defined]
    code, _, msg = details.partition(": ")
    retry = None
    for k, v in exc.trailing_metadata() or ():  # type: ignore[attr-defined]
        if k == "retry-after-ms":
            retry = float(v) / 1000.0
    status = exc.code().name  # type: ignore[attr-defined]
    if msg and code.isidentifier():  # the server's "code: message" details
        return ClientError(code, msg, status, retry)
    # the channel's own failure (e.g. "failed to connect to all addresses; ..."), or a bare message
    return ClientError(status.lower(), details or status, status, retry)


def _until(items: Iterable[T], done: threading.Event, pulling: threading.Lock) -> Iterator[T]:
    """``items`` until ``done`` is set; each ``next`` runs under ``pulling`` so the owner can wait for it."""
    it = iter(items)
    while not done.is_set():
        with pulling:
            if done.is_set():
                return
            try:
                item = next(it)
            except StopIteration:
                return
        yield item


class GrpcPoseClient:
    def __init__(self, target: str, api_key: str | None = None, timeout_s: float = 60.0,
                 max_message_bytes: int = 64 * 1024 * 1024) -> None:  # fmt: skip
        self._channel = grpc.insecure_channel(
            target,
            options=[
                ("grpc.max_send_message_length", max_message_bytes),
                ("grpc.max_receive_message_length", max_message_bytes),
            ],
        )
        self._stub = pose_pb2_grpc.PoseServiceStub(self._channel)
        self._md = (("x-api-key", api_key),) if api_key else ()
        self._timeout = timeout_s

    def estimate(
        self,
        image: bytes,
        boxes: Boxes = None,
        options: PoseOptions | None = None,
        timeout_s: float | None = None,
        model: str | None = None,
    ) -> PoseResult:
        try:
            r = self._stub.Estimate(
                request_to_proto(image, boxes, options, model), timeout=timeout_s or self._timeout,
                metadata=self._md,
            )  # fmt: skip
        except grpc.RpcError as exc:
            raise _error(exc) from None
        return result_from_proto(r)

    def models(self) -> list[dict[str, Any]]:
        """The served models (``ListModels``), the default first."""
        try:
            r = self._stub.ListModels(pose_pb2.ListModelsRequest(), timeout=self._timeout, metadata=self._md)
        except grpc.RpcError as exc:
            raise _error(exc) from None
        return [
            {"name": m.name, "architecture": m.architecture, "input_size": [m.input_width, m.input_height],
             "keypoint_schema": m.keypoint_schema, "joints": list(m.joints), "trained": m.trained,
             "default": m.is_default}
            for m in r.models
        ]  # fmt: skip

    def estimate_batch(
        self,
        images: Sequence[bytes],
        options: PoseOptions | None = None,
        timeout_s: float | None = None,
        model: str | None = None,
    ) -> list[PoseResult | ClientError]:
        req = pose_pb2.EstimateBatchRequest(requests=[request_to_proto(im, None, options, model) for im in images])
        try:
            r = self._stub.EstimateBatch(req, timeout=timeout_s or self._timeout, metadata=self._md)
        except grpc.RpcError as exc:
            raise _error(exc) from None
        out: list[PoseResult | ClientError] = []
        for item in r.items:
            if item.HasField("result"):
                out.append(result_from_proto(item.result))
            else:
                out.append(ClientError(item.error.code, item.error.message, "INVALID_ARGUMENT"))
        return out

    def stream(
        self,
        frames: Iterable[StreamFrame],
        options: StreamOptions | None = None,
        timeout_s: float | None = None,
    ) -> Iterator[StreamAnswer]:
        """Stream a video (``StreamEstimate``): yields one answer per frame, in frame order.

        ``options`` go with the first frame. Closing the generator early cancels the stream on the server.
        """

        # gRPC pulls ``frames`` on a thread of its own. When the call ends (answered, failed, cancelled) that
        # thread must stop pulling and leave the caller's iterator (often OpenCV reading a video) before we
        # return: a daemon thread still inside native code when the interpreter exits aborts the process.
        done = threading.Event()
        pulling = threading.Lock()

        def requests() -> Iterator[Any]:
            for i, f in enumerate(_until(frames, done, pulling)):
                yield frame_to_proto(f, options if i == 0 else None)

        call = self._stub.StreamEstimate(requests(), timeout=timeout_s, metadata=self._md)
        try:
            for r in call:
                yield answer_from_proto(r)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.CANCELLED:  # type: ignore[attr-defined]
                return
            raise _error(exc) from None
        finally:
            done.set()
            call.cancel()
            if pulling.acquire(timeout=30.0):  # wait for a frame being read right now, then no more
                pulling.release()

    def close(self) -> None:
        self._channel.close()
