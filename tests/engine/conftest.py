"""Engine test helpers: the small fixture model, real COCO images with one GT box each, an engine runner."""

from __future__ import annotations

import asyncio
import copy
import json
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service.engine import EngineConfig, PoseEngine
from service.pipeline.estimator import EstimatorConfig, PoseEstimator
from service.pipeline.image import decode_image
from service.pipeline.pipeline import PosePipeline

CROPS = 2  # max_batch_crops for the engine tests (warm-up cost ~ 1 + CROPS crops)


class Sample:
    def __init__(self, data: bytes, boxes: np.ndarray) -> None:
        self.data = data
        self.boxes = boxes
        self.image = decode_image(data)


@pytest.fixture(scope="session")
def coco_samples(data_dir: Path) -> list[Sample]:
    """Up to 8 real COCO images, each with its largest non-crowd GT person box."""
    root = data_dir / "coco_mini_val"
    ann = json.loads((root / "person_keypoints_val2017_mini.json").read_text())
    files = {im["id"]: im["file_name"] for im in ann["images"]}
    best: dict[int, list[float]] = {}
    for a in ann["annotations"]:
        if a.get("iscrowd", 0) or a["bbox"][2] < 8 or a["bbox"][3] < 8:
            continue
        cur = best.get(a["image_id"])
        if cur is None or a["bbox"][2] * a["bbox"][3] > cur[2] * cur[3]:
            best[a["image_id"]] = a["bbox"]
    out = []
    for image_id in sorted(best)[:8]:
        data = (root / "images" / files[image_id]).read_bytes()
        out.append(Sample(data, np.array([best[image_id]], dtype=np.float64)))
    assert len(out) >= 6
    return out


@pytest.fixture(scope="session")
def base_estimator(small_card, small_weights) -> PoseEstimator:
    return PoseEstimator.from_card(small_card, small_weights, config=EstimatorConfig(max_batch_crops=CROPS))


class Factory:
    """Builds a fresh pipeline (a deep copy of the small model) per call; can block a given call number."""

    def __init__(self, base: PoseEstimator, detector: Any = None) -> None:
        self.base = base
        self.detector = detector
        self.calls = 0
        self.block_call: int | None = None
        self.release = threading.Event()

    def __call__(self, device: str) -> PosePipeline:
        self.calls += 1
        if self.block_call == self.calls:
            assert self.release.wait(30)
        est = PoseEstimator(
            self.base.card, copy.deepcopy(self.base.net), trained=True, device=device, config=self.base.config
        )
        return PosePipeline(est, self.detector)


@pytest.fixture
def factory(base_estimator: PoseEstimator) -> Factory:
    return Factory(base_estimator)


def config(**kw: Any) -> EngineConfig:
    defaults: dict[str, Any] = {"max_batch_crops": CROPS, "queue_size": 16, "max_batch_images": 4}
    return EngineConfig(**{**defaults, **kw})


def run_engine(
    engine: PoseEngine, body: Callable[[PoseEngine], Awaitable[Any]], *, shutdown: bool = True
) -> Any:
    """Start ``engine``, wait until ready, run ``body(engine)``, shut down; bounded by a 60 s timeout."""

    async def main() -> Any:
        engine.start()
        try:
            await engine.wait_ready(30)
            return await asyncio.wait_for(body(engine), 60)
        finally:
            if shutdown:
                await engine.shutdown(5)

    return asyncio.run(main())


class Gate:
    """A fault hook that blocks the worker at its next pipeline call until released."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.armed = True

    def __call__(self, index: int, batch: Any) -> None:
        if self.armed:
            self.armed = False
            self.entered.set()
            assert self.release.wait(30)

    async def wait_entered(self) -> None:
        while not self.entered.is_set():
            await asyncio.sleep(0.005)
