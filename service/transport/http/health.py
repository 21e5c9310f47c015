"""Health routes: ``GET /healthz`` (liveness) and ``GET /readyz`` (readiness)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse

from ...engine.protocol import EngineClient

router = APIRouter(tags=["health"])


def get_engine(request: Request) -> EngineClient:
    engine: EngineClient = request.app.state.engine
    return engine


EngineDep = Annotated[EngineClient, Depends(get_engine)]


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is alive and its event loop answers (200), whatever the model's state."""
    return {"status": "alive"}


@router.get("/readyz", responses={503: {"description": "warming up, no live worker, or draining"}})
async def readyz(engine: EngineDep) -> JSONResponse:
    """200 with ``{ready, trained, model, detector, devices}`` once a worker is warmed up; 503 otherwise."""
    body = readiness(engine)
    return JSONResponse(body, status_code=200 if body["ready"] else 503)


def readiness(engine: EngineClient) -> dict[str, Any]:
    info = engine.info
    body: dict[str, Any] = {
        "ready": engine.ready,
        "trained": None if info is None else info.trained,
        "model": None if info is None else info.model,
        "detector": None
        if info is None or info.detector is None
        else {"name": info.detector, "trained": info.detector_trained},
        "devices": engine.devices,
        "workers": engine.workers(),
    }
    if not engine.ready:
        starting = any(w["state"] == "starting" for w in body["workers"])
        body["reason"] = (
            "draining" if engine.draining else "warming up" if starting else "no live inference worker"
        )
    return body
