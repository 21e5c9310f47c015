"""grpc.aio server: ``posesvc.v1.PoseService`` + standard health checking + reflection.

Status codes mirror REST: INVALID_ARGUMENT (bad image, boxes, options, too large), RESOURCE_EXHAUSTED (queue
full; trailer ``retry-after-ms``), DEADLINE_EXCEEDED (client deadlines are honoured: they become the engine
deadline), UNAVAILABLE (not ready / draining), UNAUTHENTICATED (API key), INTERNAL (inference failed).
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from ...errors import Overloaded, PoseServiceError, StreamLimitExceeded
from ...schemas import PoseRequest
from ...streaming.registry import StreamRegistry
from ...streaming.runner import FrameIn, FrameOut, StreamRunner
from ...streaming.session import StreamOptions
from .convert import (
    boxes_from_proto,
    deadline_from_remaining,
    frame_from_proto,
    frame_out_to_proto,
    options_from_proto,
    result_to_proto,
    stream_options_from_proto,
)
from .gen.posesvc.v1 import pose_pb2, pose_pb2_grpc
from .interceptors import DecodeGuardInterceptor, client_identity

log = logging.getLogger(__name__)

SERVICE_NAME = pose_pb2.DESCRIPTOR.services_by_name["PoseService"].full_name

CODES: dict[str, grpc.StatusCode] = {
    "overloaded": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "stream_limit": grpc.StatusCode.RESOURCE_EXHAUSTED,
    "deadline_exceeded": grpc.StatusCode.DEADLINE_EXCEEDED,
    "not_ready": grpc.StatusCode.UNAVAILABLE,
    "unknown_model": grpc.StatusCode.NOT_FOUND,
    "unauthenticated": grpc.StatusCode.UNAUTHENTICATED,
    "engine_error": grpc.StatusCode.INTERNAL,
    "internal": grpc.StatusCode.INTERNAL,
}


def status_for(exc: PoseServiceError) -> grpc.StatusCode:
    if exc.code in CODES:
        return CODES[exc.code]
    return grpc.StatusCode.INVALID_ARGUMENT if exc.client_error else grpc.StatusCode.INTERNAL


class PoseServicer(pose_pb2_grpc.PoseServiceServicer):  # type: ignore[misc]
    """Translates RPCs to :class:`~service.schemas.PoseRequest` and engine results back to protobuf."""

    def __init__(
        self,
        engine: Any,
        joint_names: Any,
        max_boxes: int,
        metrics: Any = None,
        streams: StreamRegistry | None = None,
        max_pixels: int = 50_000_000,
        max_streams_per_client: int = 8,
        describe: Any = None,
    ) -> None:
        """``describe()``: the served models as ``ModelDescription`` messages (``ListModels``)."""
        self.engine = engine
        self.describe = describe
        self.joint_names = joint_names
        self.max_boxes = max_boxes
        self.metrics = metrics
        self.streams = streams if streams is not None else StreamRegistry()
        self.max_pixels = max_pixels
        self.max_streams_per_client = max_streams_per_client

    def _count(self, method: str, code: grpc.StatusCode, t0: float) -> None:
        if self.metrics is not None:
            self.metrics.requests_total.labels(transport="grpc", method=method, code=code.name).inc()
            self.metrics.request_duration_seconds.labels(transport="grpc", method=method).observe(
                time.perf_counter() - t0
            )

    async def _one(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        boxes = boxes_from_proto(request.boxes, self.max_boxes) if request.use_boxes else None
        req = PoseRequest(
            image=bytes(request.image),
            boxes=boxes,
            options=options_from_proto(request.options),
            deadline=deadline_from_remaining(context.time_remaining()),
            model=request.model or None,
        )
        result = await self.engine.submit(req)
        t0 = time.perf_counter()
        out = result_to_proto(result, self.joint_names)
        if self.metrics is not None:
            self.metrics.stage_duration_seconds.labels(model=result.model, stage="serialize").observe(
                time.perf_counter() - t0
            )
        return out

    async def ListModels(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        t0 = time.perf_counter()
        models = self.describe() if self.describe is not None else []
        self._count("list_models", grpc.StatusCode.OK, t0)
        return pose_pb2.ListModelsResponse(models=models)

    async def Estimate(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        t0 = time.perf_counter()
        try:
            out = await self._one(request, context)
        except PoseServiceError as exc:
            self._count("estimate", status_for(exc), t0)
            await abort(context, exc)
        except Exception:
            self._count("estimate", grpc.StatusCode.INTERNAL, t0)
            raise
        self._count("estimate", grpc.StatusCode.OK, t0)
        return out

    async def EstimateBatch(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
        t0 = time.perf_counter()
        outcomes = await asyncio.gather(
            *[self._one(r, context) for r in request.requests], return_exceptions=True
        )
        items = []
        for out in outcomes:
            if isinstance(out, PoseServiceError):
                items.append(pose_pb2.BatchItem(error=pose_pb2.ItemError(code=out.code, message=out.message)))
            elif isinstance(out, BaseException):
                self._count("estimate_batch", grpc.StatusCode.INTERNAL, t0)
                raise out
            else:
                items.append(pose_pb2.BatchItem(result=out))
        self._count("estimate_batch", grpc.StatusCode.OK, t0)
        return pose_pb2.EstimateBatchResponse(items=items)

    def _count_frame(self, out: FrameOut) -> None:
        """Per-frame metrics of a stream (each frame counts once in ``stream_frames_total``)."""
        m = self.metrics
        if m is None:
            return
        if out.outcome == "processed":
            outcome, code = ("detection_skipped" if out.boxes_source == "tracker" else "processed"), "OK"
        elif out.outcome == "dropped":
            outcome, code = "dropped", grpc.StatusCode.RESOURCE_EXHAUSTED.name
        else:
            err = out.error
            outcome = "error"
            code = (status_for(err) if err is not None else grpc.StatusCode.INTERNAL).name
        m.stream_frames_total.labels(outcome=outcome).inc()
        m.requests_total.labels(transport="grpc", method="stream_frame", code=code).inc()
        if out.outcome == "processed":
            m.request_duration_seconds.labels(transport="grpc", method="stream_frame").observe(out.latency_s)

    async def StreamEstimate(self, request_iterator: Any, context: grpc.aio.ServicerContext) -> Any:
        """Frames in, one ``FramePoses`` per frame out, in order (see :mod:`service.streaming.runner`)."""
        it = request_iterator.__aiter__()
        try:
            first = await it.__anext__()
        except StopAsyncIteration:
            return
        try:
            opts = stream_options_from_proto(first.options) if first.HasField("options") else StreamOptions()
            if opts.model and hasattr(self.engine, "slot"):
                self.engine.slot(opts.model)  # an unknown model ends the stream at once (NOT_FOUND)
        except PoseServiceError as exc:
            await abort(context, exc)
            return
        runner: StreamRunner | None = None

        def expire() -> None:
            if runner is not None:
                runner.expire()

        # check and open with no await in between: the count cannot change under us (event-loop only)
        client = client_identity(context)
        if self.streams.count_for(client) >= self.max_streams_per_client:
            if self.metrics is not None:
                self.metrics.requests_rejected_total.labels(reason="stream_limit").inc()
            await abort(
                context,
                StreamLimitExceeded(
                    f"this client already has {self.max_streams_per_client} open streams (the limit); "
                    "close one or retry later"
                ),
            )
            return
        session = self.streams.open(opts, client=client, on_expire=expire)
        runner = StreamRunner(self.engine, session, on_frame=self._count_frame)

        async def frames() -> Any:
            yield self._frame(first)
            async for f in it:
                yield self._frame(f)

        try:
            async for out in runner.run(frames()):
                t0 = time.perf_counter()
                msg = frame_out_to_proto(out, self.joint_names)
                if self.metrics is not None and out.result is not None:
                    self.metrics.stage_duration_seconds.labels(model=out.result.model, stage="serialize").observe(
                        time.perf_counter() - t0
                    )
                yield msg
        except PoseServiceError as exc:
            await abort(context, exc)
        finally:
            self.streams.close(session.stream_id)

    def _frame(self, f: Any) -> FrameIn:
        return frame_from_proto(f, self.max_boxes, self.max_pixels)


async def abort(context: grpc.aio.ServicerContext, exc: PoseServiceError) -> None:
    if isinstance(exc, Overloaded | StreamLimitExceeded):
        context.set_trailing_metadata((("retry-after-ms", str(int(exc.retry_after_s * 1000))),))
    await context.abort(status_for(exc), f"{exc.code}: {exc.message}")


class GrpcServer:
    """Owns the grpc.aio server, its health servicer and the readiness watcher.

    The grpc.aio server is created in :meth:`start`, on the event loop that serves it (the HTTP lifespan's).
    """

    def __init__(
        self,
        engine: Any,
        card: Any,
        settings: Any,
        interceptors: list[Any] | None = None,
        metrics: Any = None,
    ) -> None:
        """``card``: the served model card, or the list of them (the first is the default)."""
        self.engine = engine
        self.settings = settings
        self.cards: list[Any] = list(card) if isinstance(card, list | tuple) else [card]
        self.card = self.cards[0]
        self.interceptors = interceptors or []
        self.metrics = metrics
        self.port = 0
        self.streams = StreamRegistry(
            float(getattr(settings, "stream_idle_ttl_s", 60.0)),
            on_count=None if metrics is None else metrics.active_streams.set,
            sigmas=tuple(self.card.oks_sigmas),
            sigmas_by_model={c.name: tuple(c.oks_sigmas) for c in self.cards},
            bottomup_models={c.name for c in self.cards if getattr(c, "kind", "topdown") == "bottomup"},
            default_model=self.card.name,
        )

    def describe(self) -> list[Any]:
        """The served models as ``ModelDescription`` messages, the default first."""
        infos = self.engine.infos() if hasattr(self.engine, "infos") else {self.card.name: self.engine.info}
        out = []
        for i, c in enumerate(self.cards):
            info = infos.get(c.name)
            out.append(pose_pb2.ModelDescription(
                name=c.name, architecture=c.architecture, input_width=c.input_size[0],
                input_height=c.input_size[1], keypoint_schema=c.keypoints.name, joints=list(c.joint_names),
                trained=bool(info.trained) if info is not None else False, is_default=i == 0,
            ))  # fmt: skip
        return out
        self.server: Any = None
        self.health: Any = None
        self._watch: asyncio.Task[None] | None = None

    async def start(self) -> int:
        s = self.settings
        opts = [
            ("grpc.max_receive_message_length", s.grpc_max_message_bytes),
            ("grpc.max_send_message_length", s.grpc_max_message_bytes),
        ]
        self.server = grpc.aio.server(
            options=opts, interceptors=[*self.interceptors, DecodeGuardInterceptor()]
        )
        self.health = health.aio.HealthServicer()
        servicer = PoseServicer(
            self.engine,
            self.card.joint_names,
            s.max_boxes,
            self.metrics,
            self.streams,
            s.max_image_pixels,
            int(getattr(s, "max_streams_per_client", 8)),
            self.describe,
        )
        pose_pb2_grpc.add_PoseServiceServicer_to_server(servicer, self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        health_name = health_pb2.DESCRIPTOR.services_by_name["Health"].full_name
        reflection.enable_server_reflection((SERVICE_NAME, health_name, reflection.SERVICE_NAME), self.server)
        address = f"{s.host}:{s.grpc_port}"
        if getattr(s, "tls_enabled", False):
            creds = grpc.ssl_server_credentials(
                [(Path(s.tls_key_file).read_bytes(), Path(s.tls_cert_file).read_bytes())]
            )
            self.port = self.server.add_secure_port(address, creds)
        else:
            self.port = self.server.add_insecure_port(address)
        if self.port == 0:
            raise OSError(f"cannot bind gRPC to {s.host}:{s.grpc_port}")
        for name in ("", SERVICE_NAME):
            await self.health.set(name, health_pb2.HealthCheckResponse.NOT_SERVING)
        await self.server.start()
        self._watch = asyncio.create_task(self._watch_ready())
        self.streams.start_sweeper()
        return self.port

    async def _watch_ready(self) -> None:
        last = None
        while True:
            ready = bool(self.engine.ready)
            if ready != last:
                status = (
                    health_pb2.HealthCheckResponse.SERVING
                    if ready
                    else health_pb2.HealthCheckResponse.NOT_SERVING
                )
                for name in ("", SERVICE_NAME):
                    await self.health.set(name, status)
                last = ready
            await asyncio.sleep(0.2)

    async def stop(self, grace_s: float) -> None:
        if self.server is None:
            return
        if self._watch is not None:
            self._watch.cancel()
        self.streams.stop_sweeper()
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace_s)
