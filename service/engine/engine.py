"""The serving engine: ``await engine.submit(PoseRequest) -> PoseResult``, for every transport.

Flow of one request: admission (a queue slot, or :class:`~service.errors.Overloaded` at once) → decode and
validate in a thread pool (a bad image fails here, never in a batch) → queue → a worker's batch (expired or
cancelled requests are dropped before compute) → its own future resolved with its result or its error.

Lifecycle: :meth:`PoseEngine.start` spawns one worker per device (each builds its model copy and warms up on
its own thread) and returns at once; the engine is *ready* once at least one worker is warmed up and it is not
draining. :meth:`PoseEngine.shutdown` stops admission, drains within a grace period, then stops the workers.
A crashed worker is replaced by a supervisor thread (fresh model copy, warm-up, restart counter).
"""

from __future__ import annotations

import asyncio
import logging
import queue as stdqueue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import (
    BoxesNotSupported,
    DeadlineExceeded,
    EngineError,
    InvalidInput,
    NotReady,
    PoseServiceError,
)
from ..pipeline.inputs import InputLimits, prepare_boxes, prepare_image
from ..pipeline.pipeline import PosePipeline
from ..schemas import PoseRequest, PoseResult
from ..settings import Settings
from .batcher import Batcher
from .queue import DropReason, RequestQueue, WorkItem
from .stats import EngineHooks, EngineStats, StatsRecorder
from .worker import FaultHook, Worker

log = logging.getLogger(__name__)

#: Builds one pipeline (a model copy) for a device string; called on the worker's thread.
PipelineFactory = Callable[[str], PosePipeline]


@dataclass(frozen=True)
class EngineConfig:
    """Engine knobs (see :class:`~service.settings.EngineSettings` for the env vars).

    Attributes:
        queue_size: requests admitted and not yet computing (decoding or queued); beyond → ``Overloaded``.
        max_batch_images: requests (images) per batch.
        max_batch_crops: person crops per pose forward (used for warm-up; the pipeline's estimator chunks).
        max_delay_ms: wait (ms) after the oldest queued request of a forming batch; 0 = no artificial wait.
        default_deadline_s: per-request deadline (s) when the request has none.
        drain_grace_s: shutdown: time (s) to finish admitted work.
        decode_workers: threads decoding images.
        warmup: warm up each worker before it serves.
        honour_exif: apply EXIF orientation to encoded uploads.
        max_image_bytes / max_image_pixels / max_boxes: input limits per request.
    """

    queue_size: int = 64
    max_batch_images: int = 8
    max_batch_crops: int = 32
    max_delay_ms: float = 0.0
    default_deadline_s: float = 30.0
    drain_grace_s: float = 10.0
    decode_workers: int = 2
    warmup: bool = True
    honour_exif: bool = True
    max_image_bytes: int = 20 * 1024 * 1024
    max_image_pixels: int = 50_000_000
    max_boxes: int = 256

    @classmethod
    def from_settings(cls, s: Settings) -> EngineConfig:
        e = s.engine
        return cls(
            queue_size=e.queue_size, max_batch_images=e.max_batch_images,
            max_batch_crops=e.max_batch_crops, max_delay_ms=e.max_delay_ms,
            default_deadline_s=e.default_deadline_s, drain_grace_s=e.drain_grace_s,
            decode_workers=e.decode_workers, warmup=e.warmup, honour_exif=s.honour_exif,
            max_image_bytes=s.max_image_bytes, max_image_pixels=s.max_image_pixels, max_boxes=s.max_boxes,
        )  # fmt: skip


@dataclass(frozen=True)
class ModelInfo:
    """What the engine serves (from the first warmed-up worker)."""

    model: str
    trained: bool
    detector: str | None
    detector_trained: bool | None
    #: the model needs person boxes (top-down): without a detector, requests must carry them
    needs_boxes: bool = True
    #: the inference backend serving it (``torch``, ``onnxruntime``, ...) and why, when ``auto`` fell back
    backend: str = "torch"
    backend_note: str = ""


def backend_of(estimator: object) -> str:
    """The name of the backend an estimator runs on (``torch`` for one without a backend attribute)."""
    return str(getattr(getattr(estimator, "backend", None), "name", "torch"))


class PoseEngine:
    """Dynamic-batching inference engine over one :class:`PosePipeline` per device.

    Args:
        config: engine knobs.
        factory: builds a pipeline for a device (called once per worker start, on the worker thread).
        devices: one worker per entry (``["cpu"]``, ``["cuda:0", "cuda:1"]``).
        hooks: optional observability callbacks.
        fault_hook: optional fault injection run before each batch (tests).
    """

    def __init__(
        self,
        config: EngineConfig,
        factory: PipelineFactory,
        devices: Sequence[str],
        *,
        hooks: EngineHooks | None = None,
        fault_hook: FaultHook | None = None,
    ) -> None:
        if not devices:
            raise ValueError("the engine needs at least one device")
        self.config = config
        self.devices = list(devices)
        self._factory = factory
        self._fault_hook = fault_hook
        self._stats = StatsRecorder(hooks)
        self._queue = RequestQueue(config.queue_size)
        self._batcher = Batcher(
            self._queue, config.max_batch_images, config.max_delay_ms / 1000.0, self._on_drop
        )
        self._workers: list[Worker] = []
        self._lock = threading.Lock()
        self._supervisor_q: stdqueue.Queue[Worker | None] = stdqueue.Queue()
        self._supervisor: threading.Thread | None = None
        self._decode_pool: ThreadPoolExecutor | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._outstanding: set[WorkItem] = set()
        self._pending = 0  # submitted and not answered (decoding, queued or computing)
        self._started = False
        self._draining = False
        self._stopped = False
        self._shutdown_task: asyncio.Future[None] | None = None
        self._ever_ready = threading.Event()
        self._failed_startup: list[BaseException] = []
        self.info: ModelInfo | None = None

    @classmethod
    def from_settings(cls, s: Settings, factory: PipelineFactory, **kwargs: Any) -> PoseEngine:
        return cls(EngineConfig.from_settings(s), factory, s.devices(), **kwargs)

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Spawn the workers (each loads and warms up on its own thread) and return at once.

        Must be called on the event loop that will call :meth:`submit`.
        """
        if self._started:
            raise RuntimeError("the engine was already started")
        self._loop = asyncio.get_running_loop()
        self._started = True
        self._decode_pool = ThreadPoolExecutor(
            self.config.decode_workers, thread_name_prefix="posesvc-decode"
        )
        self._batcher.start()
        self._supervisor = threading.Thread(target=self._supervise, name="posesvc-supervisor", daemon=True)
        self._supervisor.start()
        for i, device in enumerate(self.devices):
            w = self._new_worker(i, device)
            self._workers.append(w)
            w.start()

    async def wait_ready(self, timeout_s: float = 300.0) -> None:
        """Wait (s) until ready; raise :class:`EngineError` if every worker failed to start, or on timeout."""
        end = time.monotonic() + timeout_s
        while not self.ready:
            if self._failed_startup and len(self._failed_startup) >= len(self.devices):
                err = self._failed_startup[0]
                raise EngineError(f"no inference worker could start: {type(err).__name__}: {err}") from err
            if time.monotonic() > end:
                raise EngineError(f"the engine was not ready after {timeout_s:.0f} s")
            await asyncio.sleep(0.01)

    def begin_drain(self) -> None:
        """Stop admitting new requests (they get :class:`NotReady`); admitted work continues. Thread-safe."""
        self._draining = True
        self._queue.close()

    async def shutdown(self, grace_s: float | None = None) -> None:
        """Stop admitting, let admitted requests finish for up to ``grace_s`` (s, default ``drain_grace_s``),
        then stop the workers and fail whatever is left (:class:`NotReady` if queued, :class:`EngineError` if
        computing). Calls made while a shutdown runs wait for that one (the first call's grace applies)."""
        if not self._started or self._stopped:
            return
        self.begin_drain()  # at once, before the first await
        task = self._shutdown_task
        if task is None:
            task = self._shutdown_task = asyncio.ensure_future(self._shutdown(grace_s))
        await asyncio.shield(task)

    async def _shutdown(self, grace_s: float | None) -> None:
        grace = self.config.drain_grace_s if grace_s is None else grace_s
        self.begin_drain()
        end = time.monotonic() + grace
        while (
            self._pending
            and time.monotonic() < end
            and any(w.state in ("ready", "starting") for w in self._workers)
        ):
            await asyncio.sleep(0.005)
        if self._pending:
            log.warning("drain grace (%.1f s) over with %d request(s) unanswered", grace, self._pending)
        self._stopped = True
        self._batcher.stop()
        with self._lock:
            workers = list(self._workers)
        for w in workers:
            w.stop()
        self._supervisor_q.put(None)
        loop = asyncio.get_running_loop()
        for w in workers:
            await loop.run_in_executor(None, w.join, max(0.0, end - time.monotonic()) + 1.0)
        for item in self._queue.stop():
            item.fail(NotReady("the server shut down before this request was processed"))
        for item in list(self._outstanding):
            item.fail(EngineError("the server shut down while this request was being processed"))
        if self._decode_pool is not None:
            self._decode_pool.shutdown(wait=False, cancel_futures=True)
        await asyncio.sleep(0)  # let the call_soon_threadsafe callbacks above run

    # ------------------------------------------------------------------ state
    def running_threads(self) -> list[str]:
        """Names of worker threads still running: after :meth:`shutdown`, workers caught inside a forward that
        outlived the grace period (their requests were already failed)."""
        with self._lock:
            return [w.name for w in self._workers if w.thread_alive]

    @property
    def ready(self) -> bool:
        """At least one warmed-up live worker, and not draining or stopped."""
        return self._started and not self._draining and any(w.alive for w in self._workers)

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop the engine was started on (``None`` before :meth:`start`)."""
        return self._loop

    @property
    def draining(self) -> bool:
        return self._draining

    def workers(self) -> list[dict[str, str]]:
        """``[{name, device, state}]`` for each worker slot."""
        with self._lock:
            return [{"name": w.name, "device": w.device, "state": w.state} for w in self._workers]

    def stats(self) -> EngineStats:
        return self._stats.snapshot(self._queue.depth(), self._pending)

    def retry_after_s(self) -> float:
        """Hint (s) for rejected clients: the queue's work spread over the live workers, within [0.1, 30]."""
        per_image = self._stats.ewma_s_per_image or 0.1
        live = max(1, sum(w.alive for w in self._workers))
        return float(min(30.0, max(0.1, self._queue.depth() * per_image / live)))

    # ------------------------------------------------------------------ requests
    async def submit(self, request: PoseRequest) -> PoseResult:
        """Estimate poses for one image.

        Raises:
            NotReady: not started yet, still warming up, draining or stopped.
            Overloaded: the queue is full (``retry_after_s`` set); nothing was computed.
            DeadlineExceeded: the deadline passed before compute started.
            InvalidInput: undecodable image, too large, bad boxes (the subclasses in :mod:`service.errors`).
            EngineError: the worker running it crashed, or inference failed.
        """
        if not self._started or self._draining or self._stopped or not self._ever_ready.is_set():
            self._reject("not_ready")
            raise NotReady("the pose engine is not ready (starting, warming up or shutting down)")
        now = time.monotonic()
        deadline = request.deadline if request.deadline is not None else now + self.config.default_deadline_s
        if now >= deadline:
            self._reject("deadline_exceeded")
            raise DeadlineExceeded("the request's deadline had passed when it arrived")
        try:
            self._queue.reserve(self.retry_after_s())
        except PoseServiceError as exc:
            self._reject(exc.code)
            raise
        loop = asyncio.get_running_loop()
        self._pending += 1
        try:
            try:
                assert self._decode_pool is not None
                image, boxes = await loop.run_in_executor(self._decode_pool, self._prepare, request)
                if time.monotonic() >= deadline:
                    raise DeadlineExceeded("the request's deadline passed while its image was decoded")
            except PoseServiceError as exc:
                self._queue.release()
                self._reject(exc.code)
                raise
            except Exception as exc:  # e.g. ragged boxes that numpy cannot shape
                self._queue.release()
                self._reject(InvalidInput.code)
                raise InvalidInput(f"the request is malformed: {exc}") from exc
            except BaseException:  # the caller was cancelled while its image was decoded
                self._queue.release()
                self._reject("cancelled")
                raise
            fut: asyncio.Future[PoseResult] = loop.create_future()
            item = WorkItem(request, image, boxes, request.options, deadline, fut, loop)
            fut.add_done_callback(lambda f: self._settled(item, f))
            self._outstanding.add(item)
            try:
                self._queue.put(item)
            except PoseServiceError as exc:
                self._outstanding.discard(item)
                self._reject(exc.code)
                raise
            return await fut
        finally:
            self._pending -= 1

    def _prepare(self, request: PoseRequest) -> tuple[NDArray[np.uint8], NDArray[np.float64] | None]:
        """Decode and validate (decode thread): RGB uint8 image, client boxes ``(M, 5)`` or ``None``."""
        cfg = self.config
        limits = InputLimits(cfg.max_image_bytes, cfg.max_image_pixels, cfg.max_boxes, cfg.honour_exif)
        t0 = time.perf_counter()
        image = prepare_image(request.image, limits)
        if isinstance(request.image, bytes | bytearray | memoryview):
            self._stats.record_decode(time.perf_counter() - t0)
        boxes = prepare_boxes(request.boxes, image, limits)
        if boxes is None and self.info is not None and self.info.detector is None and self.info.needs_boxes:
            raise InvalidInput("this server has no person detector; send person boxes with the image")
        if request.boxes is not None and self.info is not None and not self.info.needs_boxes:
            raise BoxesNotSupported(
                f"{self.info.model} is a bottom-up model: it finds the persons itself; send the image without boxes"
            )
        return image, boxes

    def _settled(self, item: WorkItem, fut: asyncio.Future[PoseResult]) -> None:
        """On the loop, when an item's future is done (result, error or caller cancellation)."""
        self._outstanding.discard(item)
        if fut.cancelled():
            item.cancelled = True  # a worker that has not started it will skip it

    def _reject(self, reason: str) -> None:
        self._stats.record_reject(reason)

    def _on_drop(self, item: WorkItem, reason: DropReason) -> None:
        """Worker thread: an item taken from the queue is not computed."""
        self._stats.record_reject(reason)
        if reason == "deadline_exceeded":
            waited = time.monotonic() - item.enqueued_at
            item.fail(DeadlineExceeded(f"the request's deadline passed after {waited:.3f} s in the queue"))

    # ------------------------------------------------------------------ workers
    def _new_worker(self, index: int, device: str, generation: int = 0) -> Worker:
        return Worker(
            index, device, self._factory, self._batcher, self._stats,
            warmup_crops=self.config.max_batch_crops if self.config.warmup else None,
            on_exit=self._worker_exited, on_ready=self._worker_ready, fault_hook=self._fault_hook,
            generation=generation,
        )  # fmt: skip

    def _worker_ready(self, worker: Worker) -> None:
        pipe = worker.pipeline
        if pipe is not None and self.info is None:
            det = pipe.detector
            self.info = ModelInfo(
                pipe.card.name,
                pipe.estimator.trained,
                None if det is None else det.name,
                None if det is None else det.trained,
                pipe.estimator.needs_boxes,
                backend_of(pipe.estimator),
                str(getattr(pipe.estimator, "backend_note", "")),
            )
        self._ever_ready.set()

    def _worker_exited(self, worker: Worker, error: BaseException | None) -> None:
        """Worker thread: hand a crashed worker to the supervisor."""
        if error is None or self._stopped:
            return
        if worker.state == "failed" and worker.generation == 0:
            # Never became ready at startup (bad weights, device missing...): restarting would just loop.
            self._failed_startup.append(error)
            return
        self._supervisor_q.put(worker)

    def _supervise(self) -> None:
        """Supervisor thread: replace each crashed worker with a fresh one (new model copy, warm-up).

        A replacement that itself fails to start is retried after a growing pause (0.5 s doubling, ≤ 10 s).
        """
        failures = 0
        while (dead := self._supervisor_q.get()) is not None:
            if self._stopped:
                continue
            failures = failures + 1 if dead.state == "failed" else 0
            if failures:
                time.sleep(min(10.0, 0.5 * 2 ** (failures - 1)))
                if self._stopped:
                    continue
            log.warning("restarting %s (generation %d)", dead.name, dead.generation + 1)
            fresh = self._new_worker(dead.index, dead.device, dead.generation + 1)
            with self._lock:
                self._workers[dead.index] = fresh
            self._stats.record_restart(dead.name)
            fresh.start()
