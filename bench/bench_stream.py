"""Streaming benchmark (not a test): K concurrent gRPC streams at a target fps through one in-process server.

Each stream sends a generated clip (a real COCO image with two persons, shifted a few px per frame) at
``--fps``, paced in real time, with the first frame's ground-truth boxes; frames are raw RGB. Per run
(``detect_every`` 1, then 5) it prints, per stream, the achieved fps (processed frames / stream wall time),
frame latency p50/p99 (ms, send → answer, client side) and dropped frames, plus the detector's share of
frames.

The person detector is the real YOLO architecture (``yolov8n.yaml``, untrained unless ``--detector-weights``
points at trained weights) so its cost is paid, but the boxes it returns are the clip's known boxes (an
untrained detector finds nobody, which would make every frame re-detect).

    python bench/bench_stream.py [--streams 4] [--fps 15] [--frames 60] [--policy block|latest]
                                 [--card NAME|PATH] [--weights PATH]

Default model: the small parity-fixture HRNet (``$POSESVC_PARITY_FIXTURES``), so it runs on a laptop CPU.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from service.client.grpc_client import GrpcPoseClient, StreamFrame  # noqa: E402
from service.engine import EngineConfig, PoseEngine  # noqa: E402
from service.pipeline.card import ModelCard, load_card  # noqa: E402
from service.pipeline.detector import DetectorConfig, YoloPersonDetector  # noqa: E402
from service.pipeline.estimator import EstimatorConfig, PoseEstimator  # noqa: E402
from service.pipeline.image import decode_image  # noqa: E402
from service.pipeline.pipeline import PosePipeline  # noqa: E402
from service.schemas import PoseOptions  # noqa: E402
from service.settings import Settings  # noqa: E402
from service.streaming.session import StreamOptions  # noqa: E402
from service.transport.grpc.server import GrpcServer  # noqa: E402

SHARED = REPO.parent / "shared"
DATA = Path(os.environ.get("POSESVC_SHARED_DATA", SHARED / "data"))
FIXTURES = Path(os.environ.get("POSESVC_PARITY_FIXTURES", SHARED / "fixtures" / "darkpose"))
IMAGE = "coco_mini_val/images/000000192699.jpg"
BOXES = np.array([[0.0, 201.0, 315.0, 250.0], [258.0, 42.0, 267.0, 415.0]])


class KnownBoxesDetector:
    """Runs a real detector (its cost) and returns fixed boxes (the clip's first-frame GT)."""

    def __init__(self, inner: YoloPersonDetector, boxes: np.ndarray) -> None:
        self.inner, self.name, self.trained = inner, inner.name, True
        self.boxes = np.concatenate([boxes, np.full((len(boxes), 1), 0.9)], axis=1)
        self.images = 0

    def detect(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        self.inner.detect(images)
        self.images += len(images)
        return [self.boxes.copy() for _ in images]


def make_clip(n: int, scale: float, shift: int) -> tuple[list[np.ndarray], np.ndarray]:
    import cv2

    full = decode_image((DATA / IMAGE).read_bytes())
    small = cv2.resize(full, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    span = shift * min(n, 20)
    w = small.shape[1] - span
    frames = []
    for i in range(n):
        k = i % 40
        x0 = shift * (k if k < 20 else 40 - k) if span else 0  # back and forth
        frames.append(np.ascontiguousarray(small[:, span - x0 : span - x0 + w]))
    b = BOXES * scale
    b[:, 0] -= span
    b[:, 2] += np.minimum(b[:, 0], 0)
    b[:, 0] = np.maximum(b[:, 0], 0)
    return frames, b


def load_model(args: argparse.Namespace) -> tuple[ModelCard, Path | None]:
    if args.card:
        card = load_card(args.card, Settings().model.models_dir)
        return card, args.weights
    sys.path.insert(0, str(REPO))
    from tests.conftest import small_card_toml

    p = Path(os.environ.get("TMPDIR", "/tmp")) / "posesvc_bench_small_card.toml"
    p.write_text(small_card_toml(FIXTURES))
    return load_card(p), args.weights or FIXTURES / "small_model_state_dict.pt"


def run_stream(target: str, frames: list[np.ndarray], boxes: np.ndarray, fps: float, opts: StreamOptions,
               out: dict[str, Any]) -> None:  # fmt: skip
    client = GrpcPoseClient(target)
    sent: dict[int, float] = {}

    def paced() -> Iterator[StreamFrame]:
        t0 = time.perf_counter()
        for i, f in enumerate(frames):
            delay = t0 + i / fps - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            sent[i] = time.perf_counter()
            yield StreamFrame(i, f, boxes.tolist() if i == 0 else None, i / fps)

    lat, dropped, errors, detected = [], 0, 0, 0
    t_start = time.perf_counter()
    for a in client.stream(paced(), opts, timeout_s=600):
        now = time.perf_counter()
        if a.outcome == "processed":
            lat.append((now - sent[a.frame_id]) * 1000.0)
        dropped += a.outcome == "dropped"
        errors += a.outcome == "error"
        detected += a.detector_ran
    wall = time.perf_counter() - t_start
    client.close()
    out.update(lat=lat, dropped=dropped, errors=errors, detected=detected, wall=wall, frames=len(frames))


def pct(v: list[float], q: float) -> float:
    return float(np.percentile(v, q)) if v else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--streams", type=int, default=4)
    ap.add_argument("--fps", type=float, default=15.0, help="target frames/s per stream")
    ap.add_argument("--frames", type=int, default=60, help="frames per stream")
    ap.add_argument("--policy", choices=["block", "latest"], default="block")
    ap.add_argument("--max-in-flight", type=int, default=4)
    ap.add_argument("--detect-every", type=int, nargs="+", default=[1, 5])
    ap.add_argument("--scale", type=float, default=0.5, help="frame scale of the 640×457 source image")
    ap.add_argument("--card", help="model card (default: the small parity-fixture model)")
    ap.add_argument("--weights", type=Path)
    ap.add_argument("--detector-weights", default="yolov8n.yaml")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--max-batch-images", type=int, default=8)
    ap.add_argument("--flip", action="store_true", help="flip test on (off by default)")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    card, weights = load_model(args)
    frames, boxes = make_clip(args.frames, args.scale, 3)
    est = PoseEstimator.from_card(card, weights, device=args.device, allow_untrained=True,
                                  config=EstimatorConfig(max_batch_crops=32))  # fmt: skip
    det = KnownBoxesDetector(YoloPersonDetector(DetectorConfig(weights=args.detector_weights, device=args.device,
                                                               imgsz=320)), boxes)  # fmt: skip
    det.inner.detect(frames[:1])  # the detector's first call is slow (lazy init): keep it out of the figures
    cfg = EngineConfig(
        queue_size=256, max_batch_images=args.max_batch_images, max_batch_crops=32, warmup=True
    )
    s = Settings().model_copy(update={"host": "127.0.0.1", "grpc_port": 0})
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    holder: dict[str, Any] = {}

    async def start() -> None:
        engine = PoseEngine(cfg, lambda _d: PosePipeline(est, det), [args.device])
        engine.start()
        await engine.wait_ready(300)
        server = GrpcServer(engine, card, s)
        holder.update(engine=engine, server=server, port=await server.start())

    asyncio.run_coroutine_threadsafe(start(), loop).result(600)
    target = f"127.0.0.1:{holder['port']}"
    h, w = frames[0].shape[:2]
    print(f"model {card.name} on {args.device}; detector {det.name} ({args.detector_weights}); "
          f"{args.streams} streams × {args.frames} frames {w}×{h} at {args.fps:g} fps, policy {args.policy}, "
          f"max_in_flight {args.max_in_flight}, flip {'on' if args.flip else 'off'}")  # fmt: skip
    for n in args.detect_every:
        opts = StreamOptions(pose=PoseOptions(flip=args.flip), detect_every=n, policy=args.policy,
                             max_in_flight=args.max_in_flight, tracker="iou")  # fmt: skip
        d0, c0 = det.images, holder["engine"].stats().detector_calls
        outs: list[dict[str, Any]] = [{} for _ in range(args.streams)]
        threads = [
            threading.Thread(target=run_stream, args=(target, frames, boxes, args.fps, opts, o)) for o in outs
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        total = sum(o["frames"] for o in outs)
        print(f"\ndetect_every={n}: detector ran on {det.images - d0}/{total} frames "
              f"({holder['engine'].stats().detector_calls - c0} batched calls)")  # fmt: skip
        print(f"{'stream':>6} {'fps':>7} {'p50 ms':>8} {'p99 ms':>8} {'dropped':>8} {'errors':>7}")
        for i, o in enumerate(outs):
            fps = len(o["lat"]) / o["wall"]  # processed frames per second
            print(f"{i:>6} {fps:>7.2f} {pct(o['lat'], 50):>8.1f} {pct(o['lat'], 99):>8.1f} "
                  f"{o['dropped']:>8} {o['errors']:>7}")  # fmt: skip
        all_lat = [x for o in outs for x in o["lat"]]
        print(f"{'all':>6} {statistics.mean(len(o['lat']) / o['wall'] for o in outs):>7.2f} "
              f"{pct(all_lat, 50):>8.1f} {pct(all_lat, 99):>8.1f} {sum(o['dropped'] for o in outs):>8} "
              f"{sum(o['errors'] for o in outs):>7}")  # fmt: skip

    async def stop() -> None:
        await holder["server"].stop(1.0)
        await holder["engine"].shutdown(5.0)

    asyncio.run_coroutine_threadsafe(stop(), loop).result(60)
    return 0


if __name__ == "__main__":
    sys.exit(main())
