"""The FastAPI app factory. The lifespan owns the engine (and the gRPC server, when enabled): it starts them
(workers load and warm up in the background, so ``/healthz`` answers at once and ``/readyz`` says 503 until
warm) and, on shutdown, stops admission, drains in-flight work within the grace period and stops them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from importlib import resources
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from ... import __version__
from ...engine.protocol import EngineClient
from ...errors import PoseServiceError
from ...observability.metrics import Metrics
from ...settings import Settings
from ..auth import KeyChecker
from . import health, pose
from .problems import http_error_handler, service_error_handler, validation_error_handler
from .security import AuthMiddleware, BodyLimitMiddleware

if TYPE_CHECKING:
    from ...pipeline.card import ModelCard

log = logging.getLogger(__name__)

#: route path → ``method`` label of the request metrics (bounded set)
METHOD_LABELS = {"/v1/pose": "estimate", "/v1/pose/batch": "estimate_batch", "/v1/pose/render": "render"}


def create_app(
    settings: Settings,
    engine: EngineClient,
    card: ModelCard | Sequence[ModelCard] | None = None,
    metrics: Metrics | None = None,
    grpc_server: Any = None,
) -> FastAPI:
    """Build the HTTP app around ``engine`` (not started yet; the lifespan starts and drains it).

    Args:
        engine: a :class:`EngineClient`, or a :class:`~service.engine.router.ModelRouter` over several.
        card: the served model card, or the cards in serving order (the first is the default); ``None``: no
            card information (``/v1/models`` then lists the engine's models without their card details).
        metrics: Prometheus metrics (default: a fresh :class:`Metrics`).
        grpc_server: an object with ``start()`` / ``stop(grace_s)`` coroutines run by the lifespan
            (:class:`~service.transport.grpc.server.GrpcServer`), or ``None``.
    """
    cards: list[ModelCard] = [] if card is None else list(card) if isinstance(card, Sequence) else [card]
    metrics = metrics or Metrics()

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        engine.start()
        if grpc_server is not None:
            await grpc_server.start()
        try:
            yield
        finally:
            engine.begin_drain()
            grace = settings.engine.drain_grace_s
            stops = [engine.shutdown(grace)]
            if grpc_server is not None:
                stops.append(grpc_server.stop(grace))
            await asyncio.gather(*stops)

    app = FastAPI(
        title="posesvc",
        version=__version__,
        lifespan=lifespan,
        description="Top-down human pose estimation (HRNet + DARK). Errors are RFC 9457 problem+json.",
    )
    app.state.settings = settings
    app.state.engine = engine
    app.state.cards = cards
    app.state.metrics = metrics
    app.state.grpc = grpc_server

    app.add_exception_handler(PoseServiceError, service_error_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_error_handler)

    def reject(reason: str, _path: str) -> None:
        metrics.requests_rejected_total.labels(reason=reason).inc()

    per_image = settings.max_image_bytes + 1024 * 1024  # the image plus room for form fields
    app.add_middleware(
        BodyLimitMiddleware,
        limits=[
            ("/v1/pose", per_image),
            ("/v1/pose/render", per_image),
            ("/v1/pose/batch", settings.max_batch_images * per_image),
        ],
        default=1024 * 1024,
        on_reject=reject,
    )
    open_prefixes = ("/static",) if settings.metrics_require_key else ("/static", "/metrics")
    app.add_middleware(
        AuthMiddleware, checker=KeyChecker(settings.api_key_hashes), exempt=open_prefixes, on_reject=reject
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Content-Type", "X-API-Key", "Authorization", "X-Request-Timeout-Ms"],
        )

    @app.middleware("http")
    async def count_requests(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        method = METHOD_LABELS.get(request.url.path)
        t0 = time.perf_counter()
        response = await call_next(request)
        if method is not None and request.method == "POST":
            metrics.requests_total.labels(
                transport="rest", method=method, code=str(response.status_code)
            ).inc()
            metrics.request_duration_seconds.labels(transport="rest", method=method).observe(
                time.perf_counter() - t0
            )
        return response

    app.include_router(health.router)
    app.include_router(pose.router)

    default_name = cards[0].name if cards else "pose"
    slots: dict[str, Any] = dict(engine.slots) if hasattr(engine, "slots") else {default_name: engine}
    metrics.register_models([*slots, "detector"])

    @app.get("/metrics", tags=["observability"], summary="Prometheus metrics")
    async def metrics_endpoint(request: Request) -> Response:
        for name, slot in slots.items():
            metrics.batch_queue_items.labels(model=name).set(slot.stats().queue_depth)
            metrics.model_ready.labels(model=name).set(1 if slot.ready else 0)
        info = engine.info
        metrics.model_ready.labels(model="detector").set(
            1 if engine.ready and info is not None and info.detector else 0
        )
        metrics.update_gpu_memory()
        body, ctype = metrics.render(request.headers.get("accept"))
        return Response(body, media_type=ctype)

    static = resources.files("service.transport.http") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(str(static / "index.html"))

    return app
