"""RFC 9457 problem details: one stable ``type`` per cause, shared by every route.

``type`` is ``urn:posesvc:problem:<code>`` where ``<code>`` is the :class:`~service.errors.PoseServiceError`
code (also the gRPC status detail and the ``reason`` label of ``posesvc_requests_rejected_total``).
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ...errors import Overloaded, PoseServiceError

PROBLEM_JSON = "application/problem+json"
TYPE_PREFIX = "urn:posesvc:problem:"

#: error code → (HTTP status, title)
STATUS: dict[str, tuple[int, str]] = {
    "invalid_input": (400, "Invalid request"),
    "invalid_boxes": (422, "Invalid person boxes"),
    "boxes_not_supported": (422, "Boxes not supported by this model"),
    "undecodable_image": (400, "Undecodable image"),
    "unsupported_media_type": (415, "Unsupported media type"),
    "image_too_large": (413, "Image too large"),
    "payload_too_large": (413, "Payload too large"),
    "unauthenticated": (401, "Unauthenticated"),
    "not_found": (404, "Not found"),
    "unknown_model": (404, "Unknown model"),
    "method_not_allowed": (405, "Method not allowed"),
    "overloaded": (429, "Overloaded"),
    "stream_limit": (429, "Too many streams"),
    "not_ready": (503, "Not ready"),
    "deadline_exceeded": (504, "Deadline exceeded"),
    "engine_error": (500, "Inference failed"),
    "internal": (500, "Internal error"),
}


class Unauthenticated(PoseServiceError):
    code = "unauthenticated"
    client_error = True


def problem(code: str, detail: str, *, status: int | None = None, **extra: Any) -> JSONResponse:
    """A problem+json response for ``code``."""
    st, title = STATUS.get(code, (status or 500, code.replace("_", " ").capitalize()))
    body = {"type": TYPE_PREFIX + code, "title": title, "status": status or st, "detail": detail, **extra}
    headers = {}
    if code == "unauthenticated":
        headers["WWW-Authenticate"] = 'ApiKey header="X-API-Key"'
    return JSONResponse(body, status_code=status or st, media_type=PROBLEM_JSON, headers=headers)


def error_response(exc: PoseServiceError, instance: str | None = None) -> JSONResponse:
    extra: dict[str, Any] = {}
    if instance:
        extra["instance"] = instance
    resp = problem(exc.code, exc.message, **extra)
    if isinstance(exc, Overloaded):
        resp.headers["Retry-After"] = str(max(1, round(exc.retry_after_s)))
    return resp


#: error code → ``reason`` label of ``posesvc_requests_rejected_total`` (bounded set)
REJECT_REASON = {
    "overloaded": "queue_full",
    "undecodable_image": "invalid_image",
    "invalid_boxes": "invalid_input",
    "boxes_not_supported": "invalid_input",
    "invalid_input": "invalid_input",
    "unsupported_media_type": "unsupported_media_type",
    "image_too_large": "image_too_large",
    "payload_too_large": "payload_too_large",
    "deadline_exceeded": "deadline_exceeded",
    "not_ready": "not_ready",
    "unauthenticated": "unauthenticated",
}


async def service_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PoseServiceError)
    # errors raised by the engine were counted there; count the ones the transport raised itself
    metrics = getattr(request.app.state, "metrics", None)
    if metrics is not None and not getattr(exc, "counted", False) and exc.code in REJECT_REASON:
        metrics.requests_rejected_total.labels(reason=REJECT_REASON[exc.code]).inc()
    return error_response(exc, request.url.path)


async def validation_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    parts = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err.get("loc", ()) if p not in ("body", "query", "form"))
        parts.append(f"{loc or 'request'}: {err.get('msg', 'invalid')}")
    return problem("invalid_input", "; ".join(parts) or "invalid request", instance=request.url.path)


async def http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {
        404: "not_found",
        405: "method_not_allowed",
        413: "payload_too_large",
        415: "unsupported_media_type",
    }.get(exc.status_code, "invalid_input" if exc.status_code < 500 else "internal")
    return problem(code, str(exc.detail), status=exc.status_code, instance=request.url.path)
