"""A network family and a 16-joint card defined in this test alone, served end to end: REST (single image,
which used to fail inside the worker's metrics hook with "expected 17 joint scores"), gRPC unary and a gRPC
video stream, with metrics and ``/v1/models`` speaking the card's keypoint schema (MPII's 16 joints)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from torch import nn

from service.client.grpc_client import GrpcPoseClient, StreamFrame
from service.engine import EngineConfig, PoseEngine
from service.engine.metrics import metrics_hooks
from service.nets import list_nets, register_net
from service.observability.metrics import Metrics
from service.pipeline.card import ModelCard, parse_card
from service.pipeline.estimator import EstimatorConfig, PoseEstimator
from service.pipeline.image import decode_image
from service.pipeline.pipeline import PosePipeline
from service.settings import Settings
from service.streaming.session import StreamOptions
from service.transport.grpc.server import GrpcServer
from service.transport.http.app import create_app
from service.zoo.keypoints import MPII16

from ..transport.conftest import free_port

TOY = "test_toy_stride4"


class ToyNet(nn.Module):
    """(B, 3, H, W) → (B, K, H/4, W/4): a 4x4 average pool and a 1x1 conv (enough to serve, not to see)."""

    def __init__(self, num_joints: int) -> None:
        super().__init__()
        self.pool = nn.AvgPool2d(4)
        self.head = nn.Conv2d(3, num_joints, 1)

    def forward(self, x: Any) -> Any:
        return self.head(self.pool(x))


if TOY not in list_nets():
    register_net(TOY, stride=4)(ToyNet)

CARD = {
    "name": "toy_mpii16",
    "description": "toy family, MPII joints (test only)",
    "architecture": {"name": TOY, "num_joints": 16},
    "input": {"size": [64, 64]},
    "heatmap": {"size": [16, 16]},
    "keypoints": {"schema": "mpii16"},
    "geometry": {"convention": "darkpose"},
    "codec": {"name": "dark", "blur_kernel": 3},
}


@dataclass
class Served:
    http: httpx.AsyncClient
    target: str
    metrics: Metrics
    loop: asyncio.AbstractEventLoop

    def call(self, coro: Any, timeout_s: float = 60.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)


@pytest.fixture(scope="module")
def card() -> ModelCard:
    return parse_card(CARD, source="test")


@pytest.fixture(scope="module")
def served(card: ModelCard) -> Iterator[Served]:
    def factory(device: str) -> PosePipeline:
        cfg = EstimatorConfig(max_batch_crops=4)
        return PosePipeline(PoseEstimator.from_card(card, None, device=device, config=cfg, allow_untrained=True))

    settings = Settings().model_copy(update={"host": "127.0.0.1", "grpc_port": free_port()})
    metrics = Metrics()
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    holder: dict[str, Any] = {}

    async def start() -> None:
        engine = PoseEngine(EngineConfig(max_batch_crops=4, warmup=True), factory, ["cpu"],
                            hooks=metrics_hooks(metrics, card.joint_names, card.name))  # fmt: skip
        engine.start()
        await engine.wait_ready(60)
        grpc_server = GrpcServer(engine, card, settings, metrics=metrics)
        port = await grpc_server.start()
        app = create_app(settings, engine, card=card, metrics=metrics)
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
        holder.update(engine=engine, grpc=grpc_server, port=port, http=http)

    asyncio.run_coroutine_threadsafe(start(), loop).result(120)
    yield Served(holder["http"], f"127.0.0.1:{holder['port']}", metrics, loop)

    async def stop() -> None:
        await holder["http"].aclose()
        await holder["grpc"].stop(1.0)
        await holder["engine"].shutdown(2.0)

    asyncio.run_coroutine_threadsafe(stop(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


BOXES = [[100.0, 50.0, 200.0, 300.0]]


@pytest.fixture(scope="module")
def coco_jpeg(data_dir) -> bytes:
    return (data_dir / "coco_samples" / "000000196141.jpg").read_bytes()


def test_rest_single_image_and_models(served: Served, coco_jpeg: bytes) -> None:
    files = {"image": ("x.jpg", coco_jpeg, "image/jpeg")}
    r = served.call(served.http.post("/v1/pose", files=files, data={"boxes": str(BOXES)}))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"]["name"] == "toy_mpii16"
    (person,) = body["persons"]
    assert [k["name"] for k in person["keypoints"]] == list(MPII16.joints)
    models = served.call(served.http.get("/v1/models")).json()["models"][0]
    assert models["keypoint_schema"] == "mpii16" and len(models["joints"]) == 16
    assert models["skeleton"] == [list(p) for p in MPII16.skeleton]
    scrape = served.call(served.http.get("/metrics")).text
    assert 'posesvc_keypoint_score_count{joint="head_top",model="toy_mpii16"}' in scrape
    assert 'joint="nose"' not in scrape  # no COCO joint is invented for an MPII model


def test_grpc_unary_and_stream(served: Served, coco_jpeg: bytes) -> None:
    client = GrpcPoseClient(served.target)
    try:
        result = client.estimate(coco_jpeg, boxes=BOXES)
        assert result.joint_names == MPII16.joints and result.persons[0].keypoints.shape == (16, 3)
        rgb = decode_image(coco_jpeg)
        frames = [StreamFrame(i, rgb, BOXES if i == 0 else None, i / 10.0) for i in range(3)]
        answers = list(client.stream(frames, StreamOptions(detect_every=100)))
    finally:
        client.close()
    assert [a.frame_id for a in answers] == [0, 1, 2]
    assert all(a.outcome == "processed" and a.result is not None for a in answers)
    tracks = {p.track_id for a in answers if a.result for p in a.result.persons}
    assert tracks == {1}  # one person, followed by the tracker with MPII's sigmas through all frames
    assert all(p.keypoints.shape == (16, 3) for a in answers if a.result for p in a.result.persons)
