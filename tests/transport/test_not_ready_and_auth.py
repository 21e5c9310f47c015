"""Not-ready and authentication, on both transports, with the real app/servicer around a stub engine (the
transports only translate; the engine's own readiness logic is tested in tests/engine)."""

from __future__ import annotations

import asyncio
import json

import grpc
import httpx
import pytest

from service.errors import NotReady
from service.observability.metrics import Metrics
from service.settings import Settings
from service.transport.auth import KeyChecker, hash_key
from service.transport.grpc.gen.posesvc.v1 import pose_pb2, pose_pb2_grpc
from service.transport.grpc.interceptors import AuthInterceptor
from service.transport.grpc.server import GrpcServer
from service.transport.http.app import create_app

from .conftest import free_port


class StubEngine:
    """Never ready: every submit is refused like the real engine refuses while warming up or draining."""

    ready = False
    draining = False
    info = None
    devices = ["cpu"]  # noqa: RUF012

    def start(self) -> None: ...
    def begin_drain(self) -> None: ...
    async def shutdown(self, grace_s: float | None = None) -> None: ...
    def workers(self) -> list[dict[str, str]]:
        return [{"name": "worker-0@cpu", "device": "cpu", "state": "starting"}]

    def stats(self):
        from service.engine.stats import EngineStats

        return EngineStats()

    async def submit(self, request):
        raise NotReady("the pose engine is not ready (starting, warming up or shutting down)")


@pytest.fixture
def settings(small_card_path) -> Settings:
    s = Settings()
    return s.model_copy(update={"model": s.model.model_copy(update={"card": str(small_card_path)})})


def _client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


def test_rest_not_ready(settings, coco_jpeg):
    app = create_app(settings, StubEngine())

    async def go():
        async with _client(app) as c:
            r = await c.post("/v1/pose", files={"image": ("x.jpg", coco_jpeg, "image/jpeg")})
            rz = await c.get("/readyz")
            hz = await c.get("/healthz")
            return r, rz, hz

    r, rz, hz = asyncio.run(go())
    assert r.status_code == 503 and r.json()["type"] == "urn:posesvc:problem:not_ready"
    assert rz.status_code == 503 and hz.status_code == 200


def test_rest_api_keys(settings, coco_jpeg):
    s = settings.model_copy(update={"api_key_hashes": [hash_key("old-key"), hash_key("new-key")]})
    metrics = Metrics()
    app = create_app(s, StubEngine(), metrics=metrics)

    async def go():
        async with _client(app) as c:
            out = {}
            files = {"image": ("x.jpg", coco_jpeg, "image/jpeg")}
            out["none"] = await c.post("/v1/pose", files=files)
            out["wrong"] = await c.post("/v1/pose", files=files, headers={"X-API-Key": "nope"})
            out["old"] = await c.post("/v1/pose", files=files, headers={"X-API-Key": "old-key"})
            out["bearer"] = await c.post("/v1/pose", files=files, headers={"Authorization": "Bearer new-key"})
            # what kubelet probes and a Prometheus scrape send: no key at all
            out["healthz"] = await c.get("/healthz")
            out["readyz"] = await c.get("/readyz")
            out["metrics"] = await c.get("/metrics")
            out["metrics_x"] = await c.get("/metricsx")  # a prefix of an open path opens nothing
            out["models"] = await c.get("/v1/models")
            return out

    out = asyncio.run(go())
    for k in ("none", "wrong", "models", "metrics_x"):
        assert out[k].status_code == 401, k
        assert out[k].json()["type"] == "urn:posesvc:problem:unauthenticated"
    # accepted keys get through authentication (the stub engine then says not ready)
    assert out["old"].status_code == 503 and out["bearer"].status_code == 503
    assert out["healthz"].status_code == 200
    assert out["readyz"].status_code == 503 and out["readyz"].json()["ready"] is False  # the probe's answer
    assert out["metrics"].status_code == 200 and "posesvc_requests_rejected_total" in out["metrics"].text
    text = metrics.render()[0].decode()
    assert 'posesvc_requests_rejected_total{reason="unauthenticated"} 4.0' in text


def test_metrics_behind_the_key_when_asked(settings):
    s = settings.model_copy(update={"api_key_hashes": [hash_key("k")], "metrics_require_key": True})
    app = create_app(s, StubEngine())

    async def go():
        async with _client(app) as c:
            return (await c.get("/metrics"), await c.get("/metrics", headers={"X-API-Key": "k"}),
                    await c.get("/readyz"))  # fmt: skip

    anon, keyed, ready = asyncio.run(go())
    assert anon.status_code == 401 and keyed.status_code == 200
    assert ready.status_code == 503  # probes stay open whatever the metrics setting


def test_keys_hash_command_matches_the_server_check():
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "service.cli.main", "keys", "hash"], input="s3cret\n",
                       capture_output=True, text=True, timeout=60)  # fmt: skip
    assert r.returncode == 0 and r.stdout.strip() == hash_key("s3cret")
    assert KeyChecker([r.stdout.strip()]).check("s3cret")
    new = subprocess.run([sys.executable, "-m", "service.cli.main", "keys", "new", "--json"],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    doc = json.loads(new.stdout)
    assert KeyChecker([doc["sha256"]]).check(doc["key"])
    bad = subprocess.run([sys.executable, "-m", "service.cli.main", "keys", "hash"], input="",
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1


def test_keys_are_configured_as_hashes():
    checker = KeyChecker([hash_key("s3cret")])
    assert checker.check("s3cret") and not checker.check("s3cret ") and not checker.check(None)
    assert "s3cret" not in hash_key("s3cret")


def test_grpc_not_ready_and_auth(settings, coco_jpeg):
    s = settings.model_copy(
        update={"api_key_hashes": [hash_key("k1")], "grpc_port": free_port(), "host": "127.0.0.1"}
    )
    from service.pipeline.card import load_card

    card = load_card(s.model.card)

    async def go():
        srv = GrpcServer(StubEngine(), card, s, interceptors=[AuthInterceptor(KeyChecker(s.api_key_hashes))])
        port = await srv.start()
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as ch:
                stub = pose_pb2_grpc.PoseServiceStub(ch)
                req = pose_pb2.EstimateRequest(image=coco_jpeg)
                codes = {}
                for name, md in (
                    ("none", ()),
                    ("wrong", (("x-api-key", "nope"),)),
                    ("ok", (("x-api-key", "k1"),)),
                ):
                    try:
                        await stub.Estimate(req, metadata=md, timeout=10)
                        codes[name] = "OK"
                    except grpc.aio.AioRpcError as e:
                        codes[name] = e.code().name
                from grpc_health.v1 import health_pb2, health_pb2_grpc

                h = await health_pb2_grpc.HealthStub(ch).Check(
                    health_pb2.HealthCheckRequest(service=""), timeout=10
                )
                return codes, h.status
        finally:
            await srv.stop(0)

    codes, health_status = asyncio.run(go())
    assert codes == {"none": "UNAUTHENTICATED", "wrong": "UNAUTHENTICATED", "ok": "UNAVAILABLE"}
    from grpc_health.v1 import health_pb2

    assert health_status == health_pb2.HealthCheckResponse.NOT_SERVING  # health needs no key; not ready yet


def test_cors(settings):
    s = settings.model_copy(update={"cors_origins": ["https://example.org"]})
    app = create_app(s, StubEngine())

    async def go():
        async with _client(app) as c:
            return await c.options(
                "/v1/pose", headers={"Origin": "https://example.org", "Access-Control-Request-Method": "POST"}
            )

    r = asyncio.run(go())
    assert r.headers.get("access-control-allow-origin") == "https://example.org"
    assert json.dumps(True)
