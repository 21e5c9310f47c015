"""gRPC interceptors: API keys (every RPC but the health service), and a guard that turns a request message
that fails to parse into INVALID_ARGUMENT instead of UNKNOWN; plus the client identity used by stream limits.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import grpc

from ..auth import KeyChecker, key_identity, presented_key


def client_identity(context: grpc.aio.ServicerContext) -> str:
    """Who a stream belongs to, for the per-client stream limit: the API key (as a short digest, never in
    clear) when one is presented, else the peer address without its port (``ipv4:127.0.0.1``)."""
    md = {k.lower(): v for k, v in (context.invocation_metadata() or ()) if isinstance(v, str)}
    key = presented_key(md)
    if key:
        return key_identity(key)
    peer = context.peer() or ""
    head, sep, tail = peer.rpartition(":")
    return head if sep and tail.isdigit() else peer


class AuthInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """API-key check on every RPC except the health service (probes); constant-time comparison."""

    def __init__(self, checker: KeyChecker, on_reject: Callable[[str, str], None] | None = None) -> None:
        self.checker = checker
        self.on_reject = on_reject

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        method = details.method or ""
        if not self.checker.enabled or method.startswith("/grpc.health.v1.Health/"):
            return await continuation(details)
        md = {k.lower(): v for k, v in (details.invocation_metadata or ()) if isinstance(v, str)}
        if self.checker.check(presented_key(md)):
            return await continuation(details)
        if self.on_reject is not None:
            self.on_reject("unauthenticated", method)

        message = "unauthenticated: a valid API key is required (x-api-key or authorization metadata)"

        async def deny(_req: Any, context: grpc.aio.ServicerContext) -> Any:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

        async def deny_stream(_req: Any, context: grpc.aio.ServicerContext) -> Any:
            await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)
            yield  # pragma: no cover  (abort raises)

        handler = await continuation(details)
        req_s = bool(handler is not None and handler.request_streaming)
        resp_s = bool(handler is not None and handler.response_streaming)
        if req_s and resp_s:
            return grpc.stream_stream_rpc_method_handler(deny_stream)
        if req_s:
            return grpc.stream_unary_rpc_method_handler(deny)
        if resp_s:
            return grpc.unary_stream_rpc_method_handler(deny_stream)
        return grpc.unary_unary_rpc_method_handler(deny)


class _Undecodable:
    """Stands in for a request message that failed to parse (so the RPC can answer INVALID_ARGUMENT)."""

    def __init__(self, error: Exception) -> None:
        self.error = error


class DecodeGuardInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """A request that is not a valid protobuf message gets INVALID_ARGUMENT with a message, instead of grpc's
    default UNKNOWN ("Unexpected DecodeError")."""

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(details)
        if handler is None or handler.request_deserializer is None:
            return handler
        deser = handler.request_deserializer
        method = details.method or ""

        def safe(data: bytes) -> Any:
            try:
                return deser(data)
            except Exception as exc:
                return _Undecodable(exc)

        async def bad(context: grpc.aio.ServicerContext, err: _Undecodable) -> None:
            await context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"invalid_input: the request is not a valid message for {method}: {err.error}"[:500],
            )

        async def checked(it: Any, context: grpc.aio.ServicerContext) -> Any:
            async for msg in it:
                if isinstance(msg, _Undecodable):
                    await bad(context, msg)
                yield msg

        kw = {"request_deserializer": safe, "response_serializer": handler.response_serializer}
        if handler.unary_unary is not None:
            uu = handler.unary_unary

            async def unary_unary(req: Any, context: grpc.aio.ServicerContext) -> Any:
                if isinstance(req, _Undecodable):
                    await bad(context, req)
                return await uu(req, context)

            return grpc.unary_unary_rpc_method_handler(unary_unary, **kw)
        if handler.unary_stream is not None:
            us = handler.unary_stream

            async def unary_stream(req: Any, context: grpc.aio.ServicerContext) -> Any:
                if isinstance(req, _Undecodable):
                    await bad(context, req)
                async for out in us(req, context):
                    yield out

            return grpc.unary_stream_rpc_method_handler(unary_stream, **kw)
        if handler.stream_unary is not None:
            su = handler.stream_unary

            async def stream_unary(it: Any, context: grpc.aio.ServicerContext) -> Any:
                return await su(checked(it, context), context)

            return grpc.stream_unary_rpc_method_handler(stream_unary, **kw)
        ss = handler.stream_stream

        async def stream_stream(it: Any, context: grpc.aio.ServicerContext) -> Any:
            async for out in ss(checked(it, context), context):
                yield out

        return grpc.stream_stream_rpc_method_handler(stream_stream, **kw)
