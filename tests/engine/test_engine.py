"""Engine behaviour on CPU with the small fixture model (few crops: ~0.1 s per crop with flip)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import numpy as np
import pytest

from service.engine import EngineHooks, PoseEngine, WorkerCrash
from service.errors import (
    DeadlineExceeded,
    EngineError,
    InvalidBoxes,
    NotReady,
    Overloaded,
    UndecodableImage,
)
from service.schemas import PoseRequest, PoseResult

from .conftest import Factory, Gate, Sample, config, run_engine

EMPTY = np.zeros((0, 4))
TINY = np.zeros((32, 32, 3), dtype=np.uint8)


def test_batches_form_and_results_route_to_their_request(
    factory: Factory, coco_samples: list[Sample]
) -> None:
    seen: list[int] = []
    hooks = EngineHooks(on_batch=lambda images, crops, waits, compute_s: seen.append(images))
    engine = PoseEngine(config(max_delay_ms=100), factory, ["cpu"], hooks=hooks)
    samples = coco_samples[:6]

    async def body(e: PoseEngine) -> list[PoseResult]:
        reqs = [PoseRequest(s.data, s.boxes, request_id=f"r{i}") for i, s in enumerate(samples)]
        return list(await asyncio.gather(*(e.submit(r) for r in reqs)))

    results = run_engine(engine, body)
    stats = engine.stats()
    assert max(stats.batch_images) > 1 and max(seen) > 1, stats.batch_images
    assert sum(k * v for k, v in stats.batch_images.items()) == len(samples)
    ref = factory("cpu")
    for s, res in zip(samples, results, strict=True):
        alone = ref.run([s.image], [s.boxes])[0]
        assert res.image_size == alone.image_size and len(res.persons) == len(alone.persons) == 1
        got, want = res.persons[0].keypoints, alone.persons[0].keypoints
        # scores are robust to batch-size round-off (~1e-6 in the heatmaps); with random weights a few
        # ill-conditioned Taylor steps can move by more, so coordinates must agree for almost every joint
        np.testing.assert_allclose(got[:, 2], want[:, 2], atol=1e-4, rtol=0)
        assert int((np.abs(got[:, :2] - want[:, :2]).max(axis=1) <= 1e-3).sum()) >= 15
        assert res.trained and "queue_wait" in res.timings


def test_queue_full_rejects_immediately(factory: Factory) -> None:
    gate = Gate()
    engine = PoseEngine(config(queue_size=2, max_batch_images=1), factory, ["cpu"], fault_hook=gate)

    async def body(e: PoseEngine) -> None:
        first = asyncio.create_task(e.submit(PoseRequest(TINY, EMPTY)))
        await gate.wait_entered()  # the worker holds the first request
        queued = [asyncio.create_task(e.submit(PoseRequest(TINY, EMPTY))) for _ in range(2)]
        await asyncio.sleep(0.05)
        t0 = time.monotonic()
        with pytest.raises(Overloaded) as info:
            await e.submit(PoseRequest(TINY, EMPTY))
        assert time.monotonic() - t0 < 0.05
        assert info.value.retry_after_s > 0
        gate.release.set()
        for r in await asyncio.gather(first, *queued):
            assert r.persons == ()

    run_engine(engine, body)
    assert engine.stats().rejections == {"overloaded": 1}


def test_expired_deadline_costs_no_compute(factory: Factory, coco_samples: list[Sample]) -> None:
    gate = Gate()
    engine = PoseEngine(config(max_batch_images=1), factory, ["cpu"], fault_hook=gate)
    s = coco_samples[0]

    async def body(e: PoseEngine) -> None:
        blocker = asyncio.create_task(e.submit(PoseRequest(TINY, EMPTY)))
        await gate.wait_entered()
        before = e.stats().pose_forwards
        late = asyncio.create_task(e.submit(PoseRequest(s.data, s.boxes, deadline=time.monotonic() + 0.1)))
        with pytest.raises(DeadlineExceeded):  # already past on arrival
            await e.submit(PoseRequest(s.data, s.boxes, deadline=time.monotonic() - 1))
        await asyncio.sleep(0.2)
        gate.release.set()
        await blocker
        with pytest.raises(DeadlineExceeded):
            await late
        assert e.stats().pose_forwards == before

    run_engine(engine, body)
    assert engine.stats().rejections == {"deadline_exceeded": 2}


def test_cancelled_request_is_skipped(factory: Factory, coco_samples: list[Sample]) -> None:
    gate = Gate()
    engine = PoseEngine(config(max_batch_images=1), factory, ["cpu"], fault_hook=gate)
    s = coco_samples[0]

    async def body(e: PoseEngine) -> None:
        blocker = asyncio.create_task(e.submit(PoseRequest(TINY, EMPTY)))
        await gate.wait_entered()
        task = asyncio.create_task(e.submit(PoseRequest(s.data, s.boxes)))
        while e.stats().queue_depth == 0:
            await asyncio.sleep(0.005)
        task.cancel()
        await asyncio.sleep(0.01)
        gate.release.set()
        await blocker
        while e.stats().queue_depth:
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.05)
        assert e.stats().pose_forwards == 0

    run_engine(engine, body)
    assert engine.stats().rejections == {"cancelled": 1}


def test_poisoned_requests_fail_alone(factory: Factory, coco_samples: list[Sample]) -> None:
    def culprit_hook(index: int, batch: Any) -> None:
        if any(it.request.request_id == "culprit" for it in batch):
            raise RuntimeError("simulated failure inside the pipeline")

    engine = PoseEngine(config(max_delay_ms=100), factory, ["cpu"], fault_hook=culprit_hook)
    good = coco_samples[:3]

    async def body(e: PoseEngine) -> list[Any]:
        reqs = [PoseRequest(s.data, s.boxes) for s in good]
        reqs.insert(1, PoseRequest(b"\x89PNG this is not an image"))
        reqs.insert(2, PoseRequest(good[0].data, np.array([[1e9, 1e9, 10, 10]])))
        reqs.append(PoseRequest(good[1].data, good[1].boxes, request_id="culprit"))
        return list(await asyncio.gather(*(e.submit(r) for r in reqs), return_exceptions=True))

    out = run_engine(engine, body)
    assert isinstance(out[1], UndecodableImage)
    assert isinstance(out[2], InvalidBoxes)
    assert isinstance(out[5], EngineError) and "simulated failure" in str(out[5])
    for r in (out[0], out[3], out[4]):
        assert isinstance(r, PoseResult) and len(r.persons) == 1
    stats = engine.stats()
    assert stats.rejections == {"undecodable_image": 1, "invalid_boxes": 1}
    assert stats.completed == 3 and stats.failed == 1


def test_zero_person_images_do_no_pose_forward(factory: Factory, coco_samples: list[Sample]) -> None:
    class NoPersons:
        name, trained = "none", True
        calls = 0

        def detect(self, images: Any) -> list[np.ndarray]:
            return [np.zeros((0, 5)) for _ in images]

    factory.detector = NoPersons()
    engine = PoseEngine(config(warmup=False), factory, ["cpu"])
    s = coco_samples[0]

    async def body(e: PoseEngine) -> list[PoseResult]:
        return list(await asyncio.gather(e.submit(PoseRequest(s.data, EMPTY)), e.submit(PoseRequest(s.data))))

    client, detected = run_engine(engine, body)
    assert client.persons == () and client.boxes_source == "client"
    assert detected.persons == () and detected.boxes_source == "detector"
    stats = engine.stats()
    assert stats.pose_forwards == 0 and stats.crops == 0 and stats.detector_calls >= 1


def test_shutdown_drains_in_flight_then_refuses(factory: Factory, coco_samples: list[Sample]) -> None:
    engine = PoseEngine(config(max_batch_images=2), factory, ["cpu"])
    samples = coco_samples[:4]

    async def body(e: PoseEngine) -> None:
        tasks = [asyncio.create_task(e.submit(PoseRequest(s.data, s.boxes))) for s in samples]
        while e.stats().in_flight < len(samples):
            await asyncio.sleep(0.001)
        stopping = asyncio.create_task(e.shutdown(20))
        await asyncio.sleep(0)
        assert not e.ready
        with pytest.raises(NotReady):
            await e.submit(PoseRequest(samples[0].data, samples[0].boxes))
        for r in await asyncio.gather(*tasks):
            assert len(r.persons) == 1
        await stopping

    run_engine(engine, body, shutdown=False)
    assert engine.stats().completed == len(samples)
    assert all(w["state"] == "stopped" for w in engine.workers())


def test_worker_crash_fails_in_flight_and_restarts(factory: Factory, coco_samples: list[Sample]) -> None:
    crashed = []

    def crash_once(index: int, batch: Any) -> None:
        if not crashed:
            crashed.append(len(batch))
            raise WorkerCrash("simulated worker death")

    restarts: list[str] = []
    factory.block_call = 2  # the restart's model build waits until released
    engine = PoseEngine(
        config(max_delay_ms=200),
        factory,
        ["cpu"],
        fault_hook=crash_once,
        hooks=EngineHooks(on_restart=restarts.append),
    )
    samples = coco_samples[:2]

    async def body(e: PoseEngine) -> None:
        out = await asyncio.gather(
            *(e.submit(PoseRequest(s.data, s.boxes)) for s in samples), return_exceptions=True
        )
        assert crashed == [2]
        assert all(isinstance(r, EngineError) and "crashed" in str(r) for r in out)
        assert not e.ready  # the replacement is still loading
        factory.release.set()
        await e.wait_ready(30)
        r = await e.submit(PoseRequest(samples[0].data, samples[0].boxes))
        assert len(r.persons) == 1

    run_engine(engine, body)
    assert engine.stats().restarts == 1 and restarts == ["worker-0@cpu"]


def test_submit_before_start_is_not_ready(factory: Factory) -> None:
    engine = PoseEngine(config(), factory, ["cpu"])

    async def body() -> None:
        with pytest.raises(NotReady):
            await engine.submit(PoseRequest(TINY, EMPTY))

    asyncio.run(body())


def test_untrained_yolo_detector_is_called_once_per_batch(
    base_estimator: Any, coco_samples: list[Sample]
) -> None:
    from service.pipeline.detector import DetectorConfig, YoloPersonDetector

    detector = YoloPersonDetector(DetectorConfig(weights="yolov8n.yaml", max_det=1, imgsz=160))
    factory = Factory(base_estimator, detector)
    engine = PoseEngine(config(max_delay_ms=200, max_batch_images=3), factory, ["cpu"])
    samples = coco_samples[:3]

    async def body(e: PoseEngine) -> list[PoseResult]:
        reqs = [PoseRequest(s.data) for s in samples] + [PoseRequest(samples[0].data, samples[0].boxes)]
        return list(await asyncio.gather(*(e.submit(r) for r in reqs)))

    results = run_engine(engine, body)
    assert [r.boxes_source for r in results] == ["detector"] * 3 + ["client"]
    stats = engine.stats()
    # one batched detector call per batch that had images without boxes (never one per image)
    assert 1 <= stats.detector_calls <= stats.batches < len(results)
