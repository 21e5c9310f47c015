"""``posesvc video IN.mp4 --out OUT.mp4``: stream a video through the pose service and write it annotated.

In-process by default (an engine built from settings, as ``posesvc serve`` does); ``--url grpc://host:port``
streams to a server instead (``StreamEstimate``). Writes the annotated video (boxes, skeletons, track ids;
``mp4v``) and optionally a JSON-lines file with one line per frame:
``{"frame_id", "timestamp" (s), "outcome", "boxes_source", "detector_ran", "latency_ms",
"persons": [{"track_id", "bbox" [x, y, w, h] px, "score", "keypoints" [[x, y, score] × 17]}]}``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import sys
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from ..errors import InvalidInput
from .common import add_model_args, load_model_card, settings_from_args, untrained_warning
from .predict import parse_boxes

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from ..schemas import PoseResult
    from ..streaming.session import StreamOptions


def register(sub: Any) -> None:
    p = sub.add_parser("video", help="track poses through a video; write it annotated (+ JSON lines)")
    p.add_argument("input", type=Path, help="video file readable by OpenCV")
    p.add_argument("--out", type=Path, required=True, help="annotated video (.mp4, mp4v codec)")
    p.add_argument("--json", type=Path, help="JSON-lines output, one line per frame")
    p.add_argument("--url", help="stream to a server (grpc://host:port) instead of running in-process")
    p.add_argument("--api-key", help="API key for --url")
    p.add_argument("--model", help="with --url: the served model to use (default: the server's first)")
    add_model_args(p)
    p.add_argument("--detector-weights", help="in-process: detector weights (.pt, name, or .yaml untrained)")
    p.add_argument("--boxes", help="person boxes for the first frame, JSON [[x, y, w, h], ...] or @file.json")
    p.add_argument("--detect-every", type=int, default=1, help="run the detector every N frames (1)")
    p.add_argument("--policy", choices=["block", "latest"], default="block")
    p.add_argument("--max-in-flight", type=int, default=4)
    p.add_argument("--tracker", choices=["oks", "iou"], default="oks")
    p.add_argument("--smoothing", action="store_true", help="One-Euro smoothing of keypoints")
    p.add_argument("--no-flip", action="store_true", help="disable the flip test")
    p.add_argument("--max-frames", type=int, help="stop after this many frames")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


@dataclass
class _Frame:
    index: int
    rgb: NDArray[np.uint8]
    timestamp: float


def read_frames(path: Path, max_frames: int | None) -> tuple[Iterator[_Frame], float, tuple[int, int], int]:
    """Frames of ``path`` (RGB), its fps, (width, height) and frame count (0 if unknown)."""
    import cv2
    import numpy as np

    if not path.is_file():
        raise InvalidInput(f"no such video file: {path}")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise InvalidInput(f"cannot open video {path}")
    fps = float(cap.get(cv2.CAP_PROP_FPS)) or 30.0
    size = (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
    count = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
    if max_frames is not None:
        count = min(count, max_frames) if count else max_frames

    def gen() -> Iterator[_Frame]:
        i = 0
        try:
            while max_frames is None or i < max_frames:
                ok, bgr = cap.read()
                if not ok:
                    break
                yield _Frame(i, np.ascontiguousarray(bgr[..., ::-1]), i / fps)
                i += 1
        finally:
            cap.release()

    return gen(), fps, size, count


def annotate(rgb: NDArray[np.uint8], result: PoseResult | None) -> NDArray[np.uint8]:
    """BGR frame with skeletons, boxes and ``#track_id`` labels drawn."""
    import cv2
    import numpy as np

    from ..pipeline.render import render_poses

    drawn = render_poses(rgb, result) if result is not None else rgb.copy()
    bgr = np.ascontiguousarray(drawn[..., ::-1])
    if result is not None:
        for p in result.persons:
            if p.track_id is None:
                continue
            x, y = int(p.bbox[0]), max(12, int(p.bbox[1]) - 4)
            cv2.putText(bgr, f"#{p.track_id}", (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 3)
            cv2.putText(bgr, f"#{p.track_id}", (x, y), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 1)
    return bgr


def json_line(
    frame_id: int, timestamp: float, outcome: str, result: PoseResult | None, extra: dict[str, Any]
) -> str:
    persons = []
    if result is not None:
        for p in result.persons:
            persons.append({
                "track_id": p.track_id,
                "bbox": [round(float(v), 2) for v in p.bbox],
                "score": round(float(p.score), 4),
                "keypoints": [[round(float(a), 2), round(float(b), 2), round(float(c), 4)] for a, b, c in p.keypoints],
            })  # fmt: skip
    return json.dumps({"frame_id": frame_id, "timestamp": round(timestamp, 6), "outcome": outcome,
                       "boxes_source": None if result is None else result.boxes_source, **extra,
                       "persons": persons})  # fmt: skip


class _Sink:
    """Writes each answered frame (annotated video + JSON line) and advances the progress bar."""

    def __init__(self, args: argparse.Namespace, fps: float, size: tuple[int, int], total: int) -> None:
        import cv2

        args.out.parent.mkdir(parents=True, exist_ok=True)
        self.writer = cv2.VideoWriter(str(args.out), cv2.VideoWriter.fourcc(*"mp4v"), fps, size)
        if not self.writer.isOpened():
            raise InvalidInput(f"cannot write {args.out} (mp4v)")
        self.jsonl: TextIO | None = args.json.open("w") if args.json else None
        self.frames: dict[int, _Frame] = {}
        self.counts = {"processed": 0, "dropped": 0, "error": 0}
        from tqdm import tqdm

        self.bar = tqdm(total=total or None, unit="frame", disable=args.no_progress, file=sys.stderr)

    def write(self, frame_id: int, outcome: str, result: PoseResult | None, extra: dict[str, Any]) -> None:
        f = self.frames.pop(frame_id)
        self.writer.write(annotate(f.rgb, result))
        if self.jsonl is not None:
            self.jsonl.write(json_line(frame_id, f.timestamp, outcome, result, extra) + "\n")
        self.counts[outcome] = self.counts.get(outcome, 0) + 1
        self.bar.update(1)
        self.bar.set_postfix(dropped=self.counts["dropped"], refresh=False)

    def close(self) -> None:
        self.bar.close()
        self.writer.release()
        if self.jsonl is not None:
            self.jsonl.close()


def stream_options(args: argparse.Namespace) -> StreamOptions:
    from ..schemas import PoseOptions
    from ..streaming.session import StreamOptions

    return StreamOptions(
        pose=PoseOptions(flip=False if args.no_flip else None),
        detect_every=args.detect_every,
        policy=args.policy,
        max_in_flight=args.max_in_flight,
        smoothing=args.smoothing,
        tracker=args.tracker,
        model=getattr(args, "model", None),
    )


def run(args: argparse.Namespace) -> int:
    frames, fps, size, total = read_frames(args.input, args.max_frames)
    boxes = parse_boxes(args.boxes)
    opts = stream_options(args)
    sink = _Sink(args, fps, size, total)
    try:
        if args.url:
            _run_remote(args, frames, boxes, opts, sink)
        else:
            asyncio.run(_run_local(args, frames, boxes, opts, sink))
    finally:
        sink.close()
    c = sink.counts
    print(f"wrote {args.out}: {c['processed']} processed, {c['dropped']} dropped, {c['error']} failed frames",
          file=sys.stderr)  # fmt: skip
    return 0 if c["error"] == 0 else 1


def _run_remote(args: argparse.Namespace, frames: Iterator[_Frame], boxes: Any, opts: StreamOptions,
                sink: _Sink) -> None:  # fmt: skip
    from ..client.grpc_client import GrpcPoseClient, StreamFrame

    target = args.url.removeprefix("grpc://")
    client = GrpcPoseClient(target, api_key=args.api_key)

    def requests() -> Iterator[StreamFrame]:
        for f in frames:
            sink.frames[f.index] = f
            b = boxes.tolist() if boxes is not None and f.index == 0 else None
            yield StreamFrame(frame_id=f.index, image=f.rgb, boxes=b, timestamp=f.timestamp)

    try:
        for a in client.stream(requests(), opts):
            extra = {"detector_ran": a.detector_ran, "latency_ms": round(a.latency_ms, 3)}
            sink.write(a.frame_id, a.outcome, a.result, extra)
    finally:
        client.close()


async def _warm_up(engine: Any, sink: _Sink) -> None:
    """Wait for the engine to load and warm up, saying so on the progress bar (it takes a while on CPU)."""
    import time

    t0 = time.monotonic()
    waiter = asyncio.ensure_future(engine.wait_ready())
    while not waiter.done():
        sink.bar.set_description_str(f"warming up the model ({time.monotonic() - t0:.0f} s)")
        await asyncio.wait({waiter}, timeout=0.5)
    await waiter
    sink.bar.set_description_str("")


async def _run_local(args: argparse.Namespace, frames: Iterator[_Frame], boxes: Any, opts: StreamOptions,
                     sink: _Sink) -> None:  # fmt: skip
    from ..engine import PoseEngine
    from ..engine.factory import SettingsPipelineFactory
    from ..streaming.runner import FrameIn, StreamRunner
    from ..streaming.session import StreamSession

    s = settings_from_args(args)
    if args.detector_weights:
        s = s.model_copy(
            update={"detector": s.detector.model_copy(update={"weights": args.detector_weights})}
        )
    card = load_model_card(s)
    factory = SettingsPipelineFactory(s, card, allow_untrained=s.allow_untrained)
    if factory.weights is None:
        print(f"WARNING: {untrained_warning(card)}", file=sys.stderr)
    engine = PoseEngine.from_settings(s, factory)
    engine.start()
    try:
        await _warm_up(engine, sink)
        if card.kind == "bottomup":  # the whole image every frame: no tracked boxes, no client boxes
            if args.boxes:
                raise InvalidInput(f"{card.name} is a bottom-up model: --boxes does not apply")
            opts = dataclasses.replace(opts, detect_every=1)
        runner = StreamRunner(engine, StreamSession("local", opts, sigmas=card.oks_sigmas))
        loop = asyncio.get_running_loop()

        async def frames_in() -> AsyncIterator[FrameIn]:
            while True:
                f = await loop.run_in_executor(None, next, frames, None)
                if f is None:
                    return
                sink.frames[f.index] = f
                b = boxes if boxes is not None and f.index == 0 else None
                yield FrameIn(f.index, f.rgb, f.timestamp, b)

        async for out in runner.run(frames_in()):
            extra = {"detector_ran": out.detector_ran, "latency_ms": round(out.latency_s * 1000.0, 3)}
            sink.write(out.frame_id, out.outcome, out.result, extra)
    finally:
        await engine.shutdown()
