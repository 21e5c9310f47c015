"""gRPC client (synchronous channel)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import grpc
import numpy as np

from ..schemas import Person, PoseOptions, PoseResult
from ..transport.grpc.gen.posesvc.v1 import pose_pb2, pose_pb2_grpc
from .base import Boxes, ClientError


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
    )


def request_to_proto(image: bytes, boxes: Boxes, options: PoseOptions | None) -> Any:
    o = options or PoseOptions()
    opts = pose_pb2.PoseOptions(
        min_score=o.min_score, max_persons=o.max_persons or 0, disable_nms=not o.oks_nms
    )
    if o.flip is not None:
        opts.flip = o.flip
    req = pose_pb2.EstimateRequest(image=image, options=opts, use_boxes=boxes is not None)
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
    return ClientError(code if msg else "grpc_error", msg or details, exc.code().name, retry)  # type: ignore[attr-defined]


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
    ) -> PoseResult:
        try:
            r = self._stub.Estimate(
                request_to_proto(image, boxes, options), timeout=timeout_s or self._timeout, metadata=self._md
            )
        except grpc.RpcError as exc:
            raise _error(exc) from None
        return result_from_proto(r)

    def estimate_batch(
        self, images: Sequence[bytes], options: PoseOptions | None = None, timeout_s: float | None = None
    ) -> list[PoseResult | ClientError]:
        req = pose_pb2.EstimateBatchRequest(requests=[request_to_proto(im, None, options) for im in images])
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

    def close(self) -> None:
        self._channel.close()
