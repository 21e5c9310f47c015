"""Engine counters and observability hooks (no Prometheus dependency).

:class:`EngineStats` is an immutable snapshot for ``/readyz``, tests and benches; :class:`EngineHooks` are
optional callbacks through which a metrics module can observe every batch, rejection and restart without
touching engine internals. Hooks run on the thread that produced the event (a worker thread for batches and
deadline drops, the event loop for admission rejections), so they must be thread-safe and quick (Prometheus
client objects are).
"""

from __future__ import annotations

import logging
import threading
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from ..schemas import PoseResult

log = logging.getLogger(__name__)


def _observe(hook: Callable[..., None] | None, *args: object) -> None:
    """Call an observer hook; its failure is logged, never raised: observing must not fail the work."""
    if hook is None:
        return
    try:
        hook(*args)
    except Exception as exc:
        log.error("engine hook %s failed: %s: %s", getattr(hook, "__name__", hook), type(exc).__name__, exc)

#: How many recent queue waits the snapshot keeps (the hooks see all of them).
RECENT_WAITS = 1024


@dataclass(frozen=True)
class EngineHooks:
    """Optional callbacks (all default to ``None``).

    Attributes:
        on_batch: ``(images, crops, queue_waits_s, compute_s)`` after each batch a worker ran: images in the
            batch, person crops estimated, each request's time in the queue (s), pipeline wall time (s).
        on_reject: ``(reason)`` for each request answered without compute; ``reason`` is the error ``code``
            (``overloaded``, ``deadline_exceeded``, ``not_ready``, ``undecodable_image``, ...) or
            ``cancelled``.
        on_restart: ``(worker_name)`` when the supervisor restarts a crashed worker.
        on_results: ``(results)`` the results of a successful batch (their ``timings`` hold the batch's stage
            durations, s).
        on_decode: ``(seconds)`` for each image decoded from bytes.
    """

    on_batch: Callable[[int, int, Sequence[float], float], None] | None = None
    on_results: Callable[[Sequence[PoseResult]], None] | None = None
    on_decode: Callable[[float], None] | None = None
    on_reject: Callable[[str], None] | None = None
    on_restart: Callable[[str], None] | None = None


@dataclass(frozen=True)
class EngineStats:
    """A point-in-time snapshot of the engine's counters.

    Attributes:
        queue_depth: requests waiting in the queue (decoded, not yet taken by a worker).
        in_flight: requests submitted and not yet answered (decoding, queued or computing).
        batches: batches run by workers.
        batch_images: histogram ``{images per batch: count}``.
        batch_crops: histogram ``{person crops per batch: count}``.
        queue_wait_recent_s: the last :data:`RECENT_WAITS` queue waits (s), oldest first.
        queue_wait_count / queue_wait_sum_s: all queue waits (count, total s).
        completed: requests answered with a result; failed: answered with an error after reaching a worker.
        rejections: ``{reason: count}`` for requests answered without compute (see :class:`EngineHooks`).
        restarts: worker restarts after crashes.
        pose_forwards: pose network forwards (one per chunk of ``max_batch_crops`` crops, flip included).
        detector_calls: batched detector calls.
        crops: person crops estimated.
    """

    queue_depth: int = 0
    in_flight: int = 0
    batches: int = 0
    batch_images: Mapping[int, int] = field(default_factory=dict)
    batch_crops: Mapping[int, int] = field(default_factory=dict)
    queue_wait_recent_s: tuple[float, ...] = ()
    queue_wait_count: int = 0
    queue_wait_sum_s: float = 0.0
    completed: int = 0
    failed: int = 0
    rejections: Mapping[str, int] = field(default_factory=dict)
    restarts: int = 0
    pose_forwards: int = 0
    detector_calls: int = 0
    crops: int = 0


class StatsRecorder:
    """Thread-safe accumulator behind :class:`EngineStats`; forwards events to :class:`EngineHooks`."""

    def __init__(self, hooks: EngineHooks | None = None) -> None:
        self.hooks = hooks or EngineHooks()
        self._lock = threading.Lock()
        self._batch_images: Counter[int] = Counter()
        self._batch_crops: Counter[int] = Counter()
        self._waits: deque[float] = deque(maxlen=RECENT_WAITS)
        self._wait_count = 0
        self._wait_sum = 0.0
        self._rejections: Counter[str] = Counter()
        self._batches = self._completed = self._failed = self._restarts = 0
        self._forwards = self._detector_calls = self._crops = 0
        #: Exponential moving average of batch compute time per image (s), for the overload retry hint.
        self.ewma_s_per_image = 0.0

    def record_batch(
        self,
        images: int,
        crops: int,
        waits: Sequence[float],
        compute_s: float,
        forwards: int,
        detector_calls: int,
    ) -> None:
        with self._lock:
            self._batches += 1
            self._batch_images[images] += 1
            self._batch_crops[crops] += 1
            self._waits.extend(waits)
            self._wait_count += len(waits)
            self._wait_sum += sum(waits)
            self._forwards += forwards
            self._detector_calls += detector_calls
            self._crops += crops
            per_image = compute_s / max(images, 1)
            self.ewma_s_per_image = (
                per_image if self._batches == 1 else 0.8 * self.ewma_s_per_image + 0.2 * per_image
            )
        _observe(self.hooks.on_batch, images, crops, waits, compute_s)

    def record_results(self, results: Sequence[PoseResult]) -> None:
        _observe(self.hooks.on_results, results)

    def record_decode(self, seconds: float) -> None:
        _observe(self.hooks.on_decode, seconds)

    def record_outcome(self, ok: bool) -> None:
        with self._lock:
            if ok:
                self._completed += 1
            else:
                self._failed += 1

    def record_reject(self, reason: str) -> None:
        with self._lock:
            self._rejections[reason] += 1
        _observe(self.hooks.on_reject, reason)

    def record_restart(self, worker: str) -> None:
        with self._lock:
            self._restarts += 1
        _observe(self.hooks.on_restart, worker)

    def snapshot(self, queue_depth: int, in_flight: int) -> EngineStats:
        with self._lock:
            return EngineStats(
                queue_depth=queue_depth,
                in_flight=in_flight,
                batches=self._batches,
                batch_images=dict(self._batch_images),
                batch_crops=dict(self._batch_crops),
                queue_wait_recent_s=tuple(self._waits),
                queue_wait_count=self._wait_count,
                queue_wait_sum_s=self._wait_sum,
                completed=self._completed,
                failed=self._failed,
                rejections=dict(self._rejections),
                restarts=self._restarts,
                pose_forwards=self._forwards,
                detector_calls=self._detector_calls,
                crops=self._crops,
            )
