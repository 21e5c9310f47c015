"""The dynamic batcher: forms batches of requests for the worker threads.

Design choice: **worker threads pull batches** from the thread-safe
:class:`~service.engine.queue.RequestQueue` through :meth:`Batcher.next_batch`, instead of a batcher
coroutine on the event loop pushing batches to workers.

* A batch is formed at the moment a worker is free to run it, so with N workers batches go to whichever worker
  is free, with no per-worker queues to balance and no batch waiting for a busy worker while another idles.
* While a worker computes, requests accumulate in the queue; its next batch takes them all (up to
  ``max_batch_images``). Batches therefore grow with load even with ``max_delay_ms = 0``.
* Deadline and cancellation checks happen as late as possible: when an item is taken, right before compute.
* The event loop does nothing per batch (no timers, no wake-ups), so it never competes with compute.

The flush rule: a batch is handed over as soon as it has ``max_batch_images`` requests, or when its *oldest*
request has waited ``max_delay_ms`` since it was queued (``0`` = take what is queued now, never wait).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from .queue import DropReason, RequestQueue, WorkItem


class Batcher:
    """Forms batches from ``queue``; :meth:`start`/:meth:`stop` bound its life (owned by the engine).

    Args:
        queue: the shared request queue.
        max_images: most requests (images) per batch.
        max_delay_s: longest wait (s) after the oldest request of a forming batch was queued.
        on_drop: called (on the worker thread, outside the queue lock) for each item dropped before compute.
    """

    def __init__(
        self,
        queue: RequestQueue,
        max_images: int,
        max_delay_s: float,
        on_drop: Callable[[WorkItem, DropReason], None],
    ) -> None:
        self.queue = queue
        self.max_images = max_images
        self.max_delay_s = max_delay_s
        self.on_drop = on_drop
        self._running = False

    @property
    def running(self) -> bool:
        return self._running

    def start(self) -> None:
        self._running = True

    def stop(self) -> None:
        """Wake every waiting worker; :meth:`next_batch` returns empty from now on."""
        self._running = False
        self.queue.wake_all()

    def next_batch(self, stop: threading.Event, poll_s: float = 0.1) -> list[WorkItem]:
        """Block until a batch is ready and return it; return ``[]`` after ``poll_s`` (s) idle or when
        stopped, so the caller can check its own ``stop`` event."""
        q = self.queue
        batch: list[WorkItem] = []
        dropped: list[tuple[WorkItem, DropReason]] = []
        with q.cond:
            if not q.items and self._running and not stop.is_set():
                q.cond.wait(poll_s)
            first_at = 0.0
            while self._running and not stop.is_set():
                now = time.monotonic()
                while q.items and len(batch) < self.max_images:
                    item = q.items.popleft()
                    reason = item.drop_reason(now)
                    if reason is not None:
                        dropped.append((item, reason))
                        continue
                    if not batch:
                        first_at = item.enqueued_at
                    batch.append(item)
                if not batch or len(batch) >= self.max_images:
                    break
                remaining = first_at + self.max_delay_s - time.monotonic()
                if remaining <= 0:
                    break
                q.cond.wait(remaining)
        for item, reason in dropped:
            self.on_drop(item, reason)
        return batch
