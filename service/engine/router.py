"""Several models in one server: one slot per card, each a :class:`PoseEngine` with its own queue, batcher
and workers (so a batch never mixes models), and a router that sends each request to the slot it names.

The router answers the same calls as a single engine (``submit``, ``ready``, ``info``, ``stats``, lifecycle),
so transports, streams and ``posesvc serve`` use either. ``request.model = None`` goes to the default slot
(the first card); an unknown name is :class:`~service.errors.UnknownModel` (404 / NOT_FOUND) naming the
models served.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import replace

from ..errors import UnknownModel
from ..schemas import PoseRequest, PoseResult
from .engine import ModelInfo, PoseEngine
from .stats import EngineStats


class ModelRouter:
    """Routes requests to per-model engines (slots).

    Args:
        slots: card name → engine, in serving order; the first is the default.
    """

    def __init__(self, slots: Mapping[str, PoseEngine]) -> None:
        if not slots:
            raise ValueError("the router needs at least one model")
        self.slots: dict[str, PoseEngine] = dict(slots)
        self.default = next(iter(self.slots))

    # ------------------------------------------------------------------ routing
    def models(self) -> list[str]:
        return list(self.slots)

    def slot(self, model: str | None) -> PoseEngine:
        """The engine serving ``model`` (``None``: the default)."""
        name = self.default if model is None or model == "" else model
        engine = self.slots.get(name)
        if engine is None:
            raise UnknownModel(f"model {name!r} is not served here; served: {', '.join(self.slots)}")
        return engine

    async def submit(self, request: PoseRequest) -> PoseResult:
        engine = self.slot(request.model)
        return await engine.submit(request if request.model else replace(request, model=self.default))

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        for engine in self.slots.values():
            engine.start()

    async def wait_ready(self, timeout_s: float = 300.0) -> None:
        await asyncio.gather(*(e.wait_ready(timeout_s) for e in self.slots.values()))

    def begin_drain(self) -> None:
        for engine in self.slots.values():
            engine.begin_drain()

    async def shutdown(self, grace_s: float | None = None) -> None:
        await asyncio.gather(*(e.shutdown(grace_s) for e in self.slots.values()))

    def running_threads(self) -> list[str]:
        return [f"{name}/{t}" for name, e in self.slots.items() for t in e.running_threads()]

    # ------------------------------------------------------------------ state
    @property
    def ready(self) -> bool:
        """Every model has a warmed-up live worker (a server is ready when all it promises can be served)."""
        return all(e.ready for e in self.slots.values())

    @property
    def draining(self) -> bool:
        return any(e.draining for e in self.slots.values())

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        return self.slots[self.default].loop

    @property
    def devices(self) -> list[str]:
        return self.slots[self.default].devices

    @property
    def info(self) -> ModelInfo | None:
        """The default model's info."""
        return self.slots[self.default].info

    def infos(self) -> dict[str, ModelInfo | None]:
        return {name: e.info for name, e in self.slots.items()}

    def workers(self) -> list[dict[str, str]]:
        return [{**w, "model": name} for name, e in self.slots.items() for w in e.workers()]

    def stats(self) -> EngineStats:
        """The default model's counters (per-model counters: ``slots[name].stats()``)."""
        return self.slots[self.default].stats()
