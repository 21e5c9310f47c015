"""The uvicorn server of ``posesvc serve``: it drains the engine before it stops listening."""

from __future__ import annotations

import asyncio
from types import FrameType

import uvicorn

from ...engine.protocol import EngineClient


class DrainingServer(uvicorn.Server):
    """uvicorn server that drains the engine before it stops listening.

    First SIGTERM/SIGINT: admission stops and ``/readyz`` turns 503 at once, but the listener stays open while
    the engine drains (at most ``grace_s`` plus a worker join), so requests that arrive meanwhile are answered
    503 ``not_ready`` / UNAVAILABLE instead of being refused or reset mid-handshake. When the drain ends,
    uvicorn's own shutdown runs (close the listener, finish connections, lifespan). A second signal starts
    uvicorn's shutdown at once; a further SIGINT forces it.
    """

    def __init__(self, config: uvicorn.Config, engine: EngineClient, grace_s: float) -> None:
        super().__init__(config)
        self.engine = engine
        self.grace_s = grace_s
        self._drain: asyncio.Task[None] | None = None
        self._drain_requested = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        loop = self.engine.loop
        if self._drain_requested or loop is None or loop.is_closed():
            super().handle_exit(sig, frame)
            return
        self._drain_requested = True
        loop.call_soon_threadsafe(self._drain_then_exit, sig, frame)

    def _drain_then_exit(self, sig: int, frame: FrameType | None) -> None:
        """Stop admission now and start the engine's drain clock at the signal: whatever is still unanswered
        when the grace period ends is failed with a clear error (503 not_ready / engine_error problem); then
        hand over to uvicorn's shutdown, whose own timeout only has to cover writing those answers."""
        self.engine.begin_drain()
        if self._drain is None:
            self._drain = asyncio.ensure_future(self.engine.shutdown(self.grace_s))
        self._drain.add_done_callback(lambda _task: uvicorn.Server.handle_exit(self, sig, frame))
