"""The bounded request queue and its items: one ``(request, future)`` pair per submitted image.

Admission is counted in *slots*: a slot is reserved when a request is submitted (before its image is decoded)
and freed when a worker takes the request. So ``queue_size`` bounds everything admitted and not yet computing,
and a full queue is rejected at once, before any decoding work is spent on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from ..errors import NotReady, Overloaded
from ..schemas import PoseOptions, PoseRequest, PoseResult

DropReason = Literal["deadline_exceeded", "cancelled"]


@dataclass(eq=False)
class WorkItem:
    """A decoded, validated request waiting for (or undergoing) compute.

    Attributes:
        request: the original request (for ids and logs).
        image: decoded RGB uint8 ``(H, W, 3)``.
        boxes: validated ``(M, 5)`` client boxes, or ``None`` to run the detector.
        options: the request's options.
        deadline: absolute :func:`time.monotonic` time (s).
        future: resolved on ``loop`` with the result or the error.
        enqueued_at: :func:`time.monotonic` time (s) the item entered the queue.
        cancelled: set (on the loop) when the caller gave up; a worker skips it if not yet started.
    """

    request: PoseRequest
    image: NDArray[np.uint8]
    boxes: NDArray[np.float64] | None
    options: PoseOptions
    deadline: float
    future: asyncio.Future[PoseResult]
    loop: asyncio.AbstractEventLoop
    enqueued_at: float = field(default_factory=time.monotonic)
    cancelled: bool = False

    def drop_reason(self, now: float) -> DropReason | None:
        """Why this item must not be computed (``None``: compute it)."""
        if self.cancelled:
            return "cancelled"
        if now >= self.deadline:
            return "deadline_exceeded"
        return None

    def resolve(self, result: PoseResult) -> None:
        """Set the result from any thread (ignored if the future is already done or the loop closed)."""
        self._call(_set_result, self.future, result)

    def fail(self, error: BaseException) -> None:
        """Set the error from any thread (ignored if the future is already done or the loop closed)."""
        self._call(_set_exception, self.future, error)

    def _call(self, fn: object, fut: asyncio.Future[PoseResult], value: object) -> None:
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
            self.loop.call_soon_threadsafe(fn, fut, value)  # type: ignore[arg-type]


def _set_result(fut: asyncio.Future[PoseResult], result: PoseResult) -> None:
    if not fut.done():
        fut.set_result(result)


def _set_exception(fut: asyncio.Future[PoseResult], error: BaseException) -> None:
    if not fut.done():
        fut.set_exception(error)


class RequestQueue:
    """FIFO of :class:`WorkItem` shared by the event loop (producer) and worker threads (consumers).

    ``cond`` guards the deque; the :class:`~service.engine.batcher.Batcher` waits on it.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.cond = threading.Condition()
        self.items: deque[WorkItem] = deque()
        self._reserved = 0
        self._closed = False
        self._stopped = False

    @property
    def closed(self) -> bool:
        return self._closed

    def depth(self) -> int:
        """Requests queued (decoded, waiting for a worker)."""
        with self.cond:
            return len(self.items)

    def reserve(self, retry_after_s: float = 1.0) -> None:
        """Take an admission slot or raise :class:`Overloaded` (full) / :class:`NotReady` (closed)."""
        with self.cond:
            if self._closed:
                raise NotReady("the server is shutting down and accepts no new requests")
            if len(self.items) + self._reserved >= self.capacity:
                raise Overloaded(
                    f"the request queue is full ({self.capacity} requests); retry in {retry_after_s:.1f} s",
                    retry_after_s=retry_after_s,
                )
            self._reserved += 1

    def release(self) -> None:
        """Give back a reserved slot (the request failed before being queued)."""
        with self.cond:
            self._reserved -= 1

    def put(self, item: WorkItem) -> None:
        """Queue an item in its reserved slot. Admitted before :meth:`close`, it is still queued (drain);
        raises :class:`NotReady` only after :meth:`stop` (nobody would compute it)."""
        with self.cond:
            self._reserved -= 1
            if self._stopped:
                raise NotReady("the server shut down before this request was queued")
            item.enqueued_at = time.monotonic()
            self.items.append(item)
            self.cond.notify()

    def close(self) -> None:
        """Stop admitting; queued items are still served (drain)."""
        with self.cond:
            self._closed = True
            self.cond.notify_all()

    def stop(self) -> list[WorkItem]:
        """Final shutdown: refuse even admitted requests; remove and return everything still queued."""
        with self.cond:
            self._closed = self._stopped = True
            self.cond.notify_all()
            out = list(self.items)
            self.items.clear()
            return out

    def wake_all(self) -> None:
        with self.cond:
            self.cond.notify_all()
