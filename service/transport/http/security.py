"""API-key authentication and request-body limits (ASGI middleware, so they apply before any parsing).
The key check itself is :mod:`service.transport.auth`, shared with gRPC."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ...errors import PayloadTooLarge
from ..auth import KeyChecker, presented_key
from .problems import problem

#: Paths that never need a key: the web page, liveness and readiness (kubelet probes send no headers).
OPEN_PATHS = ("/", "/healthz", "/readyz")


class AuthMiddleware:
    """Rejects requests without a valid API key (401 problem) except on :data:`OPEN_PATHS` and the
    ``exempt`` path prefixes (``/metrics`` is among them unless ``metrics_require_key``)."""

    def __init__(
        self, app: ASGIApp, checker: KeyChecker, exempt: Sequence[str], on_reject: Any = None
    ) -> None:
        self.app = app
        self.checker = checker
        self.exempt = tuple(exempt)
        self.on_reject = on_reject

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.checker.enabled or self._exempt(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if self.checker.check(presented_key(headers)):
            await self.app(scope, receive, send)
            return
        if self.on_reject is not None:
            self.on_reject("unauthenticated", scope["path"])
        resp = problem(
            "unauthenticated", "a valid API key is required (X-API-Key header or Authorization: Bearer)"
        )
        await resp(scope, receive, send)

    def _exempt(self, path: str) -> bool:
        return path in OPEN_PATHS or any(path == p or path.startswith(p + "/") for p in self.exempt)


class BodyLimitMiddleware:
    """Refuses bodies larger than the route's limit: at once from ``Content-Length``, otherwise while reading
    (the body is never buffered beyond the limit)."""

    def __init__(
        self, app: ASGIApp, limits: Sequence[tuple[str, int]], default: int, on_reject: Any = None
    ) -> None:
        self.app = app
        self.limits = sorted(limits, key=lambda x: -len(x[0]))
        self.default = default
        self.on_reject = on_reject

    def limit_for(self, path: str) -> int:
        for prefix, lim in self.limits:
            if path == prefix or path.startswith(prefix + "/"):
                return lim
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope["path"])
        for k, v in scope.get("headers", []):
            if k == b"content-length":
                try:
                    size = int(v)
                except ValueError:
                    size = 0
                if size > limit:
                    await self._reject(scope, receive, send, size, limit)
                    return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            msg = await receive()
            if msg["type"] == "http.request":
                seen += len(msg.get("body", b""))
                if seen > limit:
                    raise PayloadTooLarge(f"the request body exceeds the limit of {limit} bytes")
            return msg

        await self.app(scope, limited, send)

    async def _reject(self, scope: Scope, receive: Receive, send: Send, size: int, limit: int) -> None:
        if self.on_reject is not None:
            self.on_reject("payload_too_large", scope["path"])
        resp = problem("payload_too_large", f"the request body is {size} bytes; the limit is {limit} bytes")
        resp.headers["Connection"] = "close"
        await resp(scope, receive, send)
