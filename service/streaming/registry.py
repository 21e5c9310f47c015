"""Open stream sessions: creation, lookup, per-client counts, the ``active_streams`` gauge, idle TTL."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
import uuid
from collections import Counter
from collections.abc import Callable

from .session import StreamOptions, StreamSession

log = logging.getLogger(__name__)


class StreamRegistry:
    """All open streams of a server (event-loop only; not thread-safe).

    Args:
        ttl_s: a stream with no frame received or answered for this long (s) is expired: its RPC ends and its
            state is freed.
        on_count: called with the number of open streams after each change (e.g. sets a gauge).
    """

    def __init__(
        self,
        ttl_s: float = 60.0,
        on_count: Callable[[int], None] | None = None,
        sigmas: tuple[float, ...] | None = None,
        sigmas_by_model: dict[str, tuple[float, ...]] | None = None,
        bottomup_models: set[str] | frozenset[str] = frozenset(),
        default_model: str = "",
    ) -> None:
        """``sigmas``: OKS sigmas of the default model's keypoint schema for the sessions' trackers;
        ``sigmas_by_model``: those of each served model, for streams that name one; ``bottomup_models``: the
        models that find persons themselves: their streams never send tracked boxes (every frame is a
        "detector" frame, i.e. the whole image); ``default_model``: the model of streams that name none."""
        self.bottomup_models = frozenset(bottomup_models)
        self.default_model = default_model
        self.ttl_s = ttl_s
        self.on_count = on_count
        self.sigmas = sigmas
        self.sigmas_by_model = dict(sigmas_by_model or {})
        self._sessions: dict[str, StreamSession] = {}
        self._expire_cbs: dict[str, Callable[[], None]] = {}
        self._sweeper: asyncio.Task[None] | None = None
        self.opened_total = 0
        self.expired_total = 0

    def __len__(self) -> int:
        return len(self._sessions)

    def __contains__(self, stream_id: object) -> bool:
        return stream_id in self._sessions

    def get(self, stream_id: str) -> StreamSession | None:
        return self._sessions.get(stream_id)

    def count_for(self, client: str) -> int:
        """Open streams of one client (for a per-client limit)."""
        return sum(s.client == client for s in self._sessions.values())

    def counts(self) -> Counter[str]:
        return Counter(s.client for s in self._sessions.values())

    def open(
        self, options: StreamOptions, client: str = "", on_expire: Callable[[], None] | None = None
    ) -> StreamSession:
        """Create a session with a fresh id; ``on_expire`` is called if the sweeper expires it."""
        sid = uuid.uuid4().hex
        sigmas = self.sigmas_by_model.get(options.model, self.sigmas) if options.model else self.sigmas
        if (options.model or self.default_model) in self.bottomup_models and options.detect_every != 1:
            options = dataclasses.replace(options, detect_every=1)  # bottom-up: the whole image every frame
        session = StreamSession(sid, options, client, sigmas)
        self._sessions[sid] = session
        if on_expire is not None:
            self._expire_cbs[sid] = on_expire
        self.opened_total += 1
        self._changed()
        return session

    def close(self, stream_id: str) -> None:
        """Free a session (idempotent)."""
        if self._sessions.pop(stream_id, None) is not None:
            self._expire_cbs.pop(stream_id, None)
            self._changed()

    def sweep(self, now: float | None = None) -> list[str]:
        """Expire sessions idle for more than ``ttl_s`` (s); returns their ids."""
        now = time.monotonic() if now is None else now
        dead = [sid for sid, s in self._sessions.items() if now - s.last_seen > self.ttl_s]
        for sid in dead:
            cb = self._expire_cbs.get(sid)
            log.info("stream %s idle for more than %.1f s: expired", sid, self.ttl_s)
            self.expired_total += 1
            self.close(sid)
            if cb is not None:
                cb()
        return dead

    def start_sweeper(self, interval_s: float | None = None) -> None:
        """Run :meth:`sweep` every ``interval_s`` (s; default ``ttl_s / 4``, at most 5 s) on the running loop."""
        interval = interval_s if interval_s is not None else min(5.0, max(0.05, self.ttl_s / 4.0))

        async def loop() -> None:
            while True:
                await asyncio.sleep(interval)
                self.sweep()

        if self._sweeper is None:
            self._sweeper = asyncio.create_task(loop())

    def stop_sweeper(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None

    def _changed(self) -> None:
        if self.on_count is not None:
            self.on_count(len(self._sessions))
