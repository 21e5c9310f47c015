"""One worker thread per device: owns its pipeline (model copy), pulls batches, resolves each request's
future.

Error policy:

* an ordinary ``Exception`` from the pipeline for a batch → the batch's requests are re-run one by one, so
  only the culprit fails (client errors such as :class:`~service.errors.InvalidBoxes` pass through as they
  are, anything else becomes :class:`~service.errors.EngineError`);
* a ``BaseException`` that is not an ``Exception`` (e.g. :class:`WorkerCrash` from an injected fault hook) →
  the worker is **dead**: its in-flight requests fail with :class:`~service.errors.EngineError`, the thread
  exits and reports to the engine's supervisor, which builds a fresh worker (and counts a restart).
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import torch
from numpy.typing import NDArray

from ..errors import EngineError, PoseServiceError
from ..pipeline.pipeline import PosePipeline
from ..schemas import PoseOptions, PoseResult
from .batcher import Batcher
from .queue import WorkItem
from .stats import StatsRecorder

log = logging.getLogger(__name__)

WorkerState = Literal["starting", "ready", "dead", "stopped", "failed"]
#: ``(worker_index, batch)`` called right before each pipeline call; tests inject faults through it.
FaultHook = Callable[[int, Sequence[WorkItem]], None]


class WorkerCrash(BaseException):
    """Raised (by a fault hook, or below the pipeline) to kill a worker rather than fail a request."""


def warm_up(pipeline: PosePipeline, max_batch_crops: int) -> None:
    """One pipeline run per input the estimator asks for (every forward shape; default flip), plus one
    detector call if the pipeline has a detector."""
    inputs = pipeline.estimator.warmup_inputs(max_batch_crops)
    for w in inputs:
        pipeline.run([w.image], [w.boxes], PoseOptions(oks_nms=False))
    if pipeline.detector is not None and inputs:
        pipeline.detector.detect([inputs[0].image])


class Worker:
    """A thread that builds its pipeline on ``device``, warms it up, then runs batches until stopped.

    Args:
        index: worker number (also its slot in the engine's worker list).
        device: torch device string (``cpu``, ``cuda:0``, ...).
        build: builds this worker's pipeline (a model copy on ``device``); called on the worker's thread.
        batcher: where batches come from.
        stats: counters.
        warmup_crops: ``max_batch_crops`` for warm-up, or ``None`` to skip warm-up.
        on_exit: ``(worker, error)`` when the thread ends; ``error`` is ``None`` after a clean stop.
        on_ready: ``(worker)`` once warmed up, before the first batch.
        fault_hook: optional fault injection (see :data:`FaultHook`).
        generation: 0 for the first worker in this slot, +1 per restart.
    """

    def __init__(
        self,
        index: int,
        device: str,
        build: Callable[[str], PosePipeline],
        batcher: Batcher,
        stats: StatsRecorder,
        *,
        warmup_crops: int | None,
        on_exit: Callable[[Worker, BaseException | None], None],
        on_ready: Callable[[Worker], None] | None = None,
        fault_hook: FaultHook | None = None,
        generation: int = 0,
    ) -> None:
        self.index = index
        self.device = device
        self.name = f"worker-{index}@{device}"
        self._build = build
        self._batcher = batcher
        self._stats = stats
        self._warmup_crops = warmup_crops
        self._on_exit = on_exit
        self._on_ready = on_ready
        self.generation = generation
        self._fault_hook = fault_hook
        self.state: WorkerState = "starting"
        self.pipeline: PosePipeline | None = None
        self.in_flight: list[WorkItem] = []
        self.stop_event = threading.Event()
        self._thread = threading.Thread(target=self._main, name=f"posesvc-{self.name}", daemon=True)

    @property
    def alive(self) -> bool:
        """Warmed up and serving."""
        return self.state == "ready"

    @property
    def busy(self) -> bool:
        return bool(self.in_flight)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.stop_event.set()

    @property
    def thread_alive(self) -> bool:
        """The worker thread still runs (e.g. inside a forward that outlived a shutdown's grace period)."""
        return self._thread.is_alive()

    def join(self, timeout_s: float | None = None) -> bool:
        """Wait for the thread (s); ``True`` if it ended."""
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    # ------------------------------------------------------------------ thread
    def _main(self) -> None:
        error: BaseException | None = None
        try:
            self.pipeline = self._build(self.device)
            if self._warmup_crops is not None:
                t0 = time.perf_counter()
                warm_up(self.pipeline, self._warmup_crops)
                log.info("%s warmed up in %.2f s", self.name, time.perf_counter() - t0)
            self.state = "ready"
            if self._on_ready is not None:
                self._on_ready(self)
            while not self.stop_event.is_set():
                batch = self._batcher.next_batch(self.stop_event)
                if batch:
                    self._run_batch(self.pipeline, batch)
            self.state = "stopped"
        except BaseException as exc:
            error = exc
            self.state = "dead" if self.state == "ready" else "failed"
            log.error("%s died: %s: %s", self.name, type(exc).__name__, exc, exc_info=exc)
            for item in self.in_flight:
                self._stats.record_outcome(False)
                item.fail(
                    EngineError(f"the inference worker {self.name} crashed ({type(exc).__name__}); retry")
                )
            self.in_flight = []
        finally:
            self._on_exit(self, error)

    def _run_batch(self, pipeline: PosePipeline, batch: list[WorkItem]) -> None:
        self.in_flight = batch
        est = pipeline.estimator
        c_start, d0 = est.counters(), pipeline.detector_calls
        t0 = time.monotonic()
        waits = [t0 - it.enqueued_at for it in batch]
        try:
            try:
                results: list[PoseResult] | None = self._run(pipeline, batch)
            except Exception as exc:
                results = None
                if len(batch) > 1:
                    log.warning(
                        "%s: a batch of %d failed (%s); re-running one by one", self.name, len(batch), exc
                    )
                for item in batch:
                    self._run_alone(pipeline, item, exc if len(batch) == 1 else None)
            if results is not None:
                # Observers run outside the compute step and cannot raise (stats._observe): a metrics hook
                # that cannot take these results never fails or re-runs a computed batch.
                self._stats.record_results(results)
                for item, wait, res in zip(batch, waits, results, strict=True):
                    self._answer(pipeline, item, res, wait)
        finally:
            compute_s = time.monotonic() - t0
            c_end = est.counters()
            self._stats.record_batch(
                len(batch),
                c_end.crops - c_start.crops,
                waits,
                compute_s,
                c_end.forwards - c_start.forwards,
                pipeline.detector_calls - d0,
            )
        self.in_flight = []

    def _run(self, pipeline: PosePipeline, batch: Sequence[WorkItem]) -> list[PoseResult]:
        """One pipeline call for ``batch`` (the fault hook, if any, runs first)."""
        if self._fault_hook is not None:
            self._fault_hook(self.index, batch)
        with torch.inference_mode():
            results = pipeline.run(
                [it.image for it in batch], [it.boxes for it in batch], [it.options for it in batch]
            )
        if len(results) != len(batch):
            raise EngineError(f"the pipeline returned {len(results)} results for {len(batch)} images")
        return [
            dataclasses.replace(r, boxes_source=it.request.boxes_source)
            if it.request.boxes_source is not None and it.boxes is not None
            else r
            for it, r in zip(batch, results, strict=True)
        ]

    def _run_alone(self, pipeline: PosePipeline, item: WorkItem, known: Exception | None) -> None:
        """Answer one item on its own (``known``: its error is already known, don't recompute)."""
        try:
            if known is not None:
                raise known
            result = self._run(pipeline, [item])[0]
        except Exception as exc:
            self._stats.record_outcome(False)
            item.fail(as_service_error(exc))
        else:
            self._answer(pipeline, item, result, time.monotonic() - item.enqueued_at)

    def _answer(self, pipeline: PosePipeline, item: WorkItem, result: PoseResult, wait: float) -> None:
        """Resolve ``item`` with ``result`` (queue wait added; drawn on its image when it asked for it)."""
        result = dataclasses.replace(result, timings={**result.timings, "queue_wait": wait})
        fmt = item.request.render
        if fmt is not None:
            try:
                result = dataclasses.replace(result, rendered=draw(item.image, result, pipeline.card.skeleton, fmt))
            except Exception as exc:
                self._stats.record_outcome(False)
                item.fail(as_service_error(exc))
                return
        item.resolve(result)
        self._stats.record_outcome(True)


def draw(
    image: NDArray[np.uint8], result: PoseResult, skeleton: Sequence[tuple[int, int]], fmt: str
) -> bytes:
    """``image`` (RGB uint8) with ``result`` drawn (boxes, skeleton, joints), encoded as ``png`` or ``jpeg``."""
    from ..pipeline.render import encode_jpeg, encode_png, render_poses

    drawn = render_poses(image, result, skeleton)
    return encode_png(drawn) if fmt == "png" else encode_jpeg(drawn)


def as_service_error(exc: Exception) -> PoseServiceError:
    """Client and service errors pass through; anything else is reported as :class:`EngineError`."""
    if isinstance(exc, PoseServiceError):
        return exc
    log.error("inference failed: %s: %s", type(exc).__name__, exc, exc_info=exc)
    return EngineError(f"inference failed: {type(exc).__name__}: {exc}")
