"""Two models in one server (the COCO fixture card and an MPII 16-joint card): every request reaches the model it
names (REST form or query, gRPC unary and stream options, the Python client), batches never mix models, an
unknown model is 404 / NOT_FOUND naming the models served, and /v1/models, ListModels and /metrics show both."""

from __future__ import annotations

import asyncio
import copy
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import grpc
import httpx
import pytest

from service.client.base import ClientError
from service.client.grpc_client import GrpcPoseClient, StreamFrame
from service.engine import EngineConfig, PoseEngine
from service.engine.metrics import metrics_hooks
from service.engine.router import ModelRouter
from service.observability.metrics import Metrics
from service.pipeline.card import ModelCard, parse_card
from service.pipeline.estimator import EstimatorConfig, PoseEstimator
from service.pipeline.image import decode_image
from service.pipeline.pipeline import PosePipeline
from service.settings import Settings
from service.streaming.session import StreamOptions
from service.transport.grpc.server import GrpcServer
from service.transport.http.app import create_app
from service.zoo.keypoints import COCO17, MPII16

from ..transport.conftest import free_port
from .test_toy_family import CARD as TOY_CARD

BOX = [[100.0, 50.0, 200.0, 300.0]]


@dataclass
class Served:
    http: httpx.AsyncClient
    target: str
    metrics: Metrics
    loop: asyncio.AbstractEventLoop
    coco: str
    mpii: str
    #: model name → the ``request.model`` of every item of every batch that model's workers ran
    batches: dict[str, list[list[str | None]]] = field(default_factory=dict)

    def call(self, coro: Any, timeout_s: float = 60.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)


@pytest.fixture(scope="module")
def served(small_card: ModelCard, small_weights) -> Iterator[Served]:
    mpii = parse_card(TOY_CARD, source="test")
    base = PoseEstimator.from_card(small_card, small_weights, config=EstimatorConfig(max_batch_crops=4))
    settings = Settings().model_copy(update={"host": "127.0.0.1", "grpc_port": free_port()})
    metrics = Metrics()
    batches: dict[str, list[list[str | None]]] = {small_card.name: [], mpii.name: []}

    def coco_factory(device: str) -> PosePipeline:
        est = PoseEstimator(small_card, copy.deepcopy(base.net), trained=True, device=device, config=base.config)
        return PosePipeline(est)

    def mpii_factory(device: str) -> PosePipeline:
        cfg = EstimatorConfig(max_batch_crops=4)
        return PosePipeline(PoseEstimator.from_card(mpii, None, device=device, config=cfg, allow_untrained=True))

    def recorder(name: str) -> Any:
        def hook(_index: int, batch: Any) -> None:
            batches[name].append([item.request.model for item in batch])

        return hook

    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    holder: dict[str, Any] = {}

    async def start() -> None:
        slots = {}
        for card, factory in ((small_card, coco_factory), (mpii, mpii_factory)):
            slots[card.name] = PoseEngine(
                EngineConfig(max_batch_crops=4, max_batch_images=4, max_delay_ms=20.0, warmup=False), factory,
                ["cpu"], hooks=metrics_hooks(metrics, card.joint_names, card.name), fault_hook=recorder(card.name),
            )  # fmt: skip
        router = ModelRouter(slots)
        router.start()
        await router.wait_ready(60)
        grpc_server = GrpcServer(router, [small_card, mpii], settings, metrics=metrics)
        port = await grpc_server.start()
        app = create_app(settings, router, card=[small_card, mpii], metrics=metrics)
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")
        holder.update(router=router, grpc=grpc_server, port=port, http=http)

    asyncio.run_coroutine_threadsafe(start(), loop).result(120)
    yield Served(holder["http"], f"127.0.0.1:{holder['port']}", metrics, loop, small_card.name, mpii.name, batches)

    async def stop() -> None:
        await holder["http"].aclose()
        await holder["grpc"].stop(1.0)
        await holder["router"].shutdown(2.0)

    asyncio.run_coroutine_threadsafe(stop(), loop).result(30)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)


@pytest.fixture(scope="module")
def jpeg(data_dir) -> bytes:
    return (data_dir / "coco_samples" / "000000196141.jpg").read_bytes()


def _post(served: Served, jpeg: bytes, model: str | None, via: str = "form") -> httpx.Response:
    data: dict[str, str] = {"boxes": str(BOX)}
    params: dict[str, str] = {}
    if model is not None:
        (data if via == "form" else params)["model"] = model
    files = {"image": ("x.jpg", jpeg, "image/jpeg")}
    return served.call(served.http.post("/v1/pose", files=files, data=data, params=params))


def test_rest_routes_by_model_and_batches_never_mix(served: Served, jpeg: bytes) -> None:
    default = _post(served, jpeg, None).json()
    assert default["model"]["name"] == served.coco and len(default["persons"][0]["keypoints"]) == 17
    by_query = _post(served, jpeg, served.mpii, via="query").json()
    assert by_query["model"]["name"] == served.mpii
    assert [k["name"] for k in by_query["persons"][0]["keypoints"]] == list(MPII16.joints)

    async def burst() -> list[httpx.Response]:  # interleaved, concurrent: the batcher sees both models at once
        files = {"image": ("x.jpg", jpeg, "image/jpeg")}
        names = [served.coco, served.mpii] * 4
        reqs = [served.http.post("/v1/pose", files=files, data={"boxes": str(BOX), "model": n}) for n in names]
        return list(await asyncio.gather(*reqs))

    answers = served.call(burst())
    assert [r.json()["model"]["name"] for r in answers] == [served.coco, served.mpii] * 4
    assert {len(r.json()["persons"][0]["keypoints"]) for r in answers} == {16, 17}
    for model, runs in served.batches.items():
        assert runs, model
        assert all(m == model for batch in runs for m in batch), (model, runs)  # never a mixed batch
    assert any(len(b) > 1 for runs in served.batches.values() for b in runs)  # and batching did happen


def test_unknown_model_is_404_naming_the_models(served: Served, jpeg: bytes) -> None:
    r = _post(served, jpeg, "nope")
    assert r.status_code == 404
    problem = r.json()
    assert problem["type"] == "urn:posesvc:problem:unknown_model"
    assert served.coco in problem["detail"] and served.mpii in problem["detail"]


def test_models_page_and_metrics_show_both(served: Served, jpeg: bytes) -> None:
    _post(served, jpeg, served.mpii)
    models = served.call(served.http.get("/v1/models")).json()["models"]
    assert [(m["name"], m["default"], len(m["joints"])) for m in models] == [
        (served.coco, True, 17), (served.mpii, False, 16)
    ]
    scrape = served.call(served.http.get("/metrics")).text
    for name in (served.coco, served.mpii):
        assert f'posesvc_model_ready{{model="{name}"}} 1.0' in scrape
        assert f'posesvc_batch_size_count{{model="{name}",unit="images"}}' in scrape
    # each model's joints under its own name
    assert f'posesvc_keypoint_score_count{{joint="head_top",model="{served.mpii}"}}' in scrape
    assert f'posesvc_keypoint_score_count{{joint="{COCO17.joints[0]}",model="{served.coco}"}}' in scrape


def test_grpc_list_estimate_stream_and_not_found(served: Served, jpeg: bytes) -> None:
    client = GrpcPoseClient(served.target)
    try:
        listed = client.models()
        assert [(m["name"], m["default"], len(m["joints"])) for m in listed] == [
            (served.coco, True, 17), (served.mpii, False, 16)
        ]
        assert client.estimate(jpeg, boxes=BOX, model=served.mpii).joint_names == MPII16.joints
        assert client.estimate(jpeg, boxes=BOX).joint_names == COCO17.joints
        with pytest.raises(ClientError) as err:
            client.estimate(jpeg, boxes=BOX, model="nope")
        assert err.value.status == grpc.StatusCode.NOT_FOUND.name and err.value.code == "unknown_model"
        rgb = decode_image(jpeg)
        frames = [StreamFrame(i, rgb, BOX if i == 0 else None, i / 10.0) for i in range(2)]
        answers = list(client.stream(frames, StreamOptions(detect_every=100, model=served.mpii)))
        assert [a.result.model for a in answers if a.result] == [served.mpii, served.mpii]
        with pytest.raises(ClientError) as err:
            list(client.stream(frames, StreamOptions(model="nope")))
        assert err.value.status == grpc.StatusCode.NOT_FOUND.name
    finally:
        client.close()
