"""Drive one stream's frames through the shared engine: bounded window, drop policy, in-order answers.

Transport-agnostic: the gRPC servicer and the in-process ``posesvc video`` both feed :class:`FrameIn` and
get :class:`FrameOut` back. Frames go through :meth:`PoseEngine.submit` like any other request, so they batch
with REST/gRPC traffic; there is no separate queue in the engine.

Per stream:

* ``pending``: frames received, not yet submitted (at most ``max_in_flight``). When full, ``block`` stops
  reading the frame iterator (gRPC flow control pushes back on the client) and ``latest`` drops the oldest
  pending frame (answered with outcome ``dropped``).
* ``running``: frames submitted to the engine (at most ``max_in_flight``). Detector and client-box frames are
  submitted as soon as there is room; a frame whose boxes come from the tracker waits until the frame before
  it has been answered (its boxes derive from that frame's keypoints).
* results are tracked / smoothed and answered strictly in the order frames were received; at most
  ``4 × max_in_flight`` frames (at least 8) may be received and not yet handed to the consumer (a slow
  consumer stops the reading, whatever the policy).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from ..errors import DeadlineExceeded, EngineError, Overloaded, PoseServiceError
from ..schemas import PoseRequest, PoseResult
from .session import StreamSession

Outcome = Literal["processed", "dropped", "error"]


class StreamIdle(DeadlineExceeded):
    """The stream received and answered nothing for longer than the idle TTL."""

    code = "stream_idle"


@dataclass
class FrameIn:
    """One received frame.

    Attributes:
        frame_id: the client's frame number (echoed).
        image: encoded bytes or an ``(H, W, 3)`` uint8 RGB array.
        timestamp: capture time (s) or ``None`` (``frame_id / fps``).
        boxes: client boxes ``(M, 4|5)`` px for this frame, or ``None`` (detector / tracker).
        error: set when the frame could not even be read (e.g. a bad raw payload): answered as an error.
        received: :func:`time.perf_counter` (s) when it arrived.
    """

    frame_id: int
    image: bytes | NDArray[np.uint8]
    timestamp: float | None = None
    boxes: NDArray[np.floating] | None = None
    error: PoseServiceError | None = None
    received: float = field(default_factory=time.perf_counter)


@dataclass
class FrameOut:
    """The answer to one frame.

    Attributes:
        outcome: ``processed`` (has ``result``), ``dropped`` or ``error`` (has ``error``).
        boxes_source: ``client``, ``detector`` or ``tracker`` (``""`` when not submitted).
        latency_s: from :attr:`FrameIn.received` to the answer being ready (s).
        detector_ran: the person detector ran on this frame.
    """

    frame_id: int
    outcome: Outcome
    result: PoseResult | None = None
    error: PoseServiceError | None = None
    latency_s: float = 0.0
    boxes_source: str = ""
    detector_ran: bool = False
    timestamp: float = 0.0


@dataclass
class _Done:
    result: PoseResult | None
    error: PoseServiceError | None
    source: str
    dropped: bool = False


class StreamRunner:
    """Runs one stream (one instance per stream, on the engine's event loop).

    Args:
        engine: anything with ``async submit(PoseRequest) -> PoseResult`` (the shared engine).
        session: the stream's state (options, tracker, smoother).
        on_frame: called with each answer as it is handed out (metrics).
        deadline_s: per-frame engine deadline (s from submission); ``None`` = the engine's default.
    """

    def __init__(
        self,
        engine: Any,
        session: StreamSession,
        *,
        on_frame: Callable[[FrameOut], None] | None = None,
        deadline_s: float | None = None,
    ) -> None:
        self.engine = engine
        self.session = session
        self.on_frame = on_frame
        self.deadline_s = deadline_s
        o = session.options
        self.max_in_flight = o.max_in_flight
        self.max_unanswered = max(8, 4 * o.max_in_flight)
        self._pending: deque[tuple[int, FrameIn]] = deque()
        self._frames: dict[int, FrameIn] = {}
        self._running: dict[int, asyncio.Task[None]] = {}
        self._done: dict[int, _Done] = {}
        self._out: asyncio.Queue[FrameOut | None] = asyncio.Queue()
        self._changed = asyncio.Event()
        self._received = 0
        self._yielded = 0
        self._next_apply = 0
        self._eof = False
        self._closing = False
        self._failure: BaseException | None = None
        self._reader: asyncio.Task[None] | None = None

    # ------------------------------------------------------------------ public
    @property
    def running(self) -> int:
        """Frames of this stream submitted to the engine and not finished."""
        return len(self._running)

    async def run(self, frames: AsyncIterator[FrameIn]) -> AsyncIterator[FrameOut]:
        """Answers to ``frames``, in order. Cancelling the consumer cancels the stream's engine submits."""
        self._reader = asyncio.create_task(self._read(frames))
        try:
            while True:
                item = await self._out.get()
                if item is None:
                    break
                self._yielded += 1
                self._changed.set()
                yield item
            if self._failure is not None:
                raise self._failure
        finally:
            self.close()

    def close(self) -> None:
        """Stop reading and cancel this stream's in-flight engine submits (idempotent)."""
        self._closing = True
        if self._reader is not None and not self._reader.done():
            self._reader.cancel()
        for t in list(self._running.values()):
            t.cancel()

    def expire(self) -> None:
        """End the stream with :class:`StreamIdle` (called by the registry's TTL sweeper)."""
        self._fail(StreamIdle("the stream was idle for longer than its TTL"))

    # ------------------------------------------------------------------ internals
    def _fail(self, exc: BaseException) -> None:
        if self._failure is None:
            self._failure = exc
        self.close()
        self._out.put_nowait(None)

    async def _wait_change(self) -> None:
        self._changed.clear()
        await self._changed.wait()

    async def _read(self, frames: AsyncIterator[FrameIn]) -> None:
        try:
            async for f in frames:
                self.session.touch()
                while True:
                    if self._received - self._yielded >= self.max_unanswered:
                        await self._wait_change()
                        continue
                    if len(self._pending) < self.max_in_flight:
                        break
                    if self.session.options.policy == "latest":
                        seq, _old = self._pending.popleft()
                        self._done[seq] = _Done(None, None, "", dropped=True)
                        break
                    await self._wait_change()
                seq = self._received
                self._received += 1
                self._frames[seq] = f
                self.session.frames += 1
                if f.error is not None:
                    self._done[seq] = _Done(None, f.error, "")
                else:
                    self._pending.append((seq, f))
                self._pump()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the transport's iterator failed (client error, bad message)
            self._fail(exc)
            return
        self._eof = True
        self._pump()

    def _pump(self) -> None:
        """Answer finished frames in order, then submit what the window allows."""
        if self._closing:
            return
        try:
            self._pump_once()
        except Exception as exc:  # a bug in tracking/smoothing must end the stream, never hang it
            self._fail(EngineError(f"stream processing failed: {type(exc).__name__}: {exc}"))

    def _pump_once(self) -> None:
        s = self.session
        while self._next_apply in self._done:
            seq = self._next_apply
            self._next_apply += 1
            self._out.put_nowait(self._answer(seq, self._done.pop(seq)))
        while self._pending and len(self._running) < self.max_in_flight:
            seq, f = self._pending[0]
            client = f.boxes is not None
            if not client and not s.due_detection() and self._next_apply != seq:
                break  # tracked boxes need the previous frame's keypoints
            self._pending.popleft()
            source, boxes = s.plan(client)
            self._running[seq] = asyncio.create_task(self._submit(seq, f, source, boxes))
        if self._eof and self._next_apply == self._received:
            self._out.put_nowait(None)
            self._eof = False  # signal once
        self._changed.set()

    def _answer(self, seq: int, d: _Done) -> FrameOut:
        s = self.session
        f = self._frames.pop(seq)
        ts = f.timestamp if f.timestamp is not None else f.frame_id / s.options.fps
        out = FrameOut(f.frame_id, "processed", boxes_source=d.source, detector_ran=d.source == "detector" and d.result is not None,
                       timestamp=ts)  # fmt: skip
        if d.result is not None:
            out.result = s.apply(d.result, ts)
        else:
            s.skip()
            if d.dropped:
                out.outcome = "dropped"
                s.dropped += 1
            else:
                out.outcome = "error"
                out.error = d.error
                s.errors += 1
        out.latency_s = time.perf_counter() - f.received
        s.touch()
        if self.on_frame is not None:
            self.on_frame(out)
        return out

    async def _submit(self, seq: int, f: FrameIn, source: str, boxes: NDArray[np.float64] | None) -> None:
        s = self.session
        req = PoseRequest(
            image=f.image,
            boxes=f.boxes if source == "client" else boxes,
            options=s.options.pose,
            deadline=None if self.deadline_s is None else time.monotonic() + self.deadline_s,
            stream_id=s.stream_id,
            frame_id=f.frame_id,
            boxes_source="tracker" if source == "tracker" else None,
            model=s.options.model,
        )
        try:
            result = await self.engine.submit(req)
            self._done[seq] = _Done(result, None, source)
        except Overloaded as exc:
            self._done[seq] = _Done(None, exc, source, dropped=s.options.policy == "latest")
        except PoseServiceError as exc:
            self._done[seq] = _Done(None, exc, source)
        except Exception as exc:
            self._done[seq] = _Done(None, EngineError(f"{type(exc).__name__}: {exc}"), source)
        finally:
            self._running.pop(seq, None)
        self._pump()
