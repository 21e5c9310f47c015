"""What the transports, streams and ``posesvc serve`` see of the serving engine (a :class:`PoseEngine`, or a
:class:`~service.engine.router.ModelRouter` over one engine per served model)."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Protocol

from ..schemas import PoseRequest, PoseResult

if TYPE_CHECKING:
    from .engine import ModelInfo
    from .stats import EngineStats


class EngineClient(Protocol):
    async def submit(self, request: PoseRequest) -> PoseResult:
        """Estimate one image (``request.model`` chooses the served model; ``None`` = the default)."""
        ...

    def start(self) -> None: ...

    async def wait_ready(self, timeout_s: float = 300.0) -> None: ...

    def begin_drain(self) -> None: ...

    async def shutdown(self, grace_s: float | None = None) -> None: ...

    def running_threads(self) -> list[str]: ...

    @property
    def ready(self) -> bool: ...

    @property
    def draining(self) -> bool: ...

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None: ...

    @property
    def info(self) -> ModelInfo | None:
        """The default model's info (``None`` until its first worker is ready)."""
        ...

    @property
    def devices(self) -> list[str]: ...

    def workers(self) -> list[dict[str, str]]: ...

    def stats(self) -> EngineStats: ...
