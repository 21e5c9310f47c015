"""The FastAPI app factory. The lifespan owns the engine: it starts it (workers load and warm up in the
background, so ``/healthz`` answers at once and ``/readyz`` says 503 until warm) and drains it on shutdown.

Extend by adding routers (``/v1/pose`` ...) next to :mod:`.health`; handlers reach the engine through
``request.app.state.engine``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from ... import __version__
from ...engine import PoseEngine
from ...settings import Settings
from . import health


def create_app(settings: Settings, engine: PoseEngine) -> FastAPI:
    """Build the HTTP app around ``engine`` (not started yet; the lifespan starts and drains it)."""

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        engine.start()
        try:
            yield
        finally:
            await engine.shutdown(settings.engine.drain_grace_s)

    app = FastAPI(title="posesvc", version=__version__, lifespan=lifespan)
    app.state.settings = settings
    app.state.engine = engine
    app.include_router(health.router)
    return app
