"""Streaming test helpers: an in-process engine (small fixture model, a counting fake detector) behind a real
grpc.aio server on a free loopback port, and a generated clip (a real COCO image shifted a few px per frame,
two persons with known boxes)."""

from __future__ import annotations

import asyncio
import copy
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service.engine import EngineConfig, PoseEngine
from service.observability.metrics import Metrics
from service.pipeline.card import ModelCard
from service.pipeline.estimator import EstimatorConfig, PoseEstimator
from service.pipeline.image import decode_image
from service.pipeline.pipeline import PosePipeline
from service.pipeline.render import encode_png
from service.settings import Settings
from service.transport.grpc.server import GrpcServer
from tests.transport.conftest import free_port

IMAGE = "coco_mini_val/images/000000192699.jpg"
#: The two GT persons of IMAGE (x, y, w, h, full-size px).
BOXES = np.array([[0.0, 201.0, 315.0, 250.0], [258.0, 42.0, 267.0, 415.0]])
SCALE = 0.5  # frames are downscaled (speed)
SHIFT = 3  # px per frame (x), after downscaling


@dataclass
class Clip:
    frames: list[np.ndarray]  # RGB uint8
    pngs: list[bytes]
    boxes: list[np.ndarray]  # (2, 4) per frame


def make_clip(data_dir: Path, n: int) -> Clip:
    import cv2

    full = decode_image((data_dir / IMAGE).read_bytes())
    small = cv2.resize(full, None, fx=SCALE, fy=SCALE, interpolation=cv2.INTER_AREA)
    h, w = small.shape[:2]
    out_w = w - SHIFT * n
    frames, pngs, boxes = [], [], []
    for i in range(n):
        # The scene moves right by SHIFT px per frame: the window slides left.
        x0 = SHIFT * (n - 1 - i)
        f = np.ascontiguousarray(small[:, x0 : x0 + out_w])
        b = BOXES * SCALE
        b[:, 0] -= x0
        b[:, 2] = np.minimum(b[:, 0] + b[:, 2], out_w) - np.maximum(b[:, 0], 0)
        b[:, 0] = np.maximum(b[:, 0], 0)
        frames.append(f)
        pngs.append(encode_png(f))
        boxes.append(b)
    _ = h
    return Clip(frames, pngs, boxes)


@pytest.fixture(scope="session")
def clip(data_dir: Path) -> Clip:
    return make_clip(data_dir, 12)


class CountingDetector:
    """Returns fixed boxes (the first frame's GT) and counts the images it saw."""

    name = "fake-detector"
    trained = True

    def __init__(self, boxes: np.ndarray) -> None:
        self.boxes = np.concatenate([boxes, np.full((len(boxes), 1), 0.9)], axis=1)
        self.images = 0

    def detect(self, images: Sequence[np.ndarray]) -> list[np.ndarray]:
        self.images += len(images)
        return [self.boxes.copy() for _ in images]


@dataclass
class LiveServer:
    target: str
    engine: PoseEngine
    grpc: GrpcServer
    metrics: Metrics
    detector: CountingDetector
    loop: asyncio.AbstractEventLoop

    def call(self, coro: Any, timeout_s: float = 30.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)


@pytest.fixture(scope="session")
def live(small_card: ModelCard, small_weights: Path, clip: Clip) -> Iterator[LiveServer]:
    base = PoseEstimator.from_card(small_card, small_weights, config=EstimatorConfig(max_batch_crops=8))
    detector = CountingDetector(clip.boxes[0])

    def factory(device: str) -> PosePipeline:
        est = PoseEstimator(
            small_card, copy.deepcopy(base.net), trained=True, device=device, config=base.config
        )
        return PosePipeline(est, detector)

    cfg = EngineConfig(queue_size=32, max_batch_images=4, max_batch_crops=8, warmup=False)
    metrics = Metrics()
    settings = Settings().model_copy(
        update={"host": "127.0.0.1", "grpc_port": free_port(), "stream_idle_ttl_s": 2.0}
    )
    loop = asyncio.new_event_loop()
    ready = threading.Event()
    holder: dict[str, Any] = {}

    async def main() -> None:
        from service.engine.metrics import metrics_hooks
        from service.zoo.keypoints import COCO17

        engine = PoseEngine(cfg, factory, ["cpu"], hooks=metrics_hooks(metrics, COCO17.joints, small_card.name))
        engine.start()
        await engine.wait_ready(60)
        server = GrpcServer(engine, small_card, settings, metrics=metrics)
        port = await server.start()
        holder.update(engine=engine, server=server, port=port)
        ready.set()

    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(main(), loop).result(120)
    assert ready.is_set()
    live = LiveServer(
        f"127.0.0.1:{holder['port']}", holder["engine"], holder["server"], metrics, detector, loop
    )
    yield live

    async def stop() -> None:
        await holder["server"].stop(1.0)
        await holder["engine"].shutdown(2.0)

    live.call(stop())
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
