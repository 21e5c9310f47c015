"""Every error class has its own status and problem type (REST) / status code (gRPC), and the server answers a
normal request right after each one."""

from __future__ import annotations

import concurrent.futures as cf
import io
import json

import grpc
import httpx
import pytest
from PIL import Image

from service.transport.grpc.gen.posesvc.v1 import pose_pb2, pose_pb2_grpc
from tests.images import big_noise_png, png_header_only

BOX = [[100.0, 50.0, 200.0, 300.0, 0.9]]


def post(server, data: bytes, boxes=BOX, ctype="image/jpeg", headers=None, **fields):
    form = {"boxes": json.dumps(boxes)} if boxes is not None else {}
    form.update({k: str(v) for k, v in fields.items()})
    return httpx.post(
        server.http + "/v1/pose",
        files={"image": ("x", data, ctype)},
        data=form,
        headers=headers or {},
        timeout=120,
    )


def assert_problem(r: httpx.Response, status: int, code: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["type"] == f"urn:posesvc:problem:{code}" and body["status"] == status and body["detail"]
    return body


@pytest.fixture
def healthy_after(server, coco_jpeg):
    yield
    r = post(server, coco_jpeg)
    assert r.status_code == 200, f"server did not answer a normal request after the error: {r.text}"
    assert len(r.json()["persons"]) == 1


# ---------------------------------------------------------------- REST
@pytest.mark.usefixtures("healthy_after")
class TestRest:
    def test_unsupported_media_type(self, server):
        r = httpx.post(server.http + "/v1/pose", content=b"hello", headers={"Content-Type": "text/plain"})
        assert_problem(r, 415, "unsupported_media_type")
        buf = io.BytesIO()
        Image.new("RGB", (8, 8)).save(buf, format="BMP")
        assert_problem(post(server, buf.getvalue()), 415, "unsupported_media_type")

    @pytest.mark.parametrize("data", [b"", b"not an image at all", b"\xff\xd8\xff\xe0" + b"\0" * 100])
    def test_undecodable(self, server, data):
        assert_problem(post(server, data), 400, "undecodable_image")

    def test_truncated_jpeg(self, server, coco_jpeg):
        assert_problem(post(server, coco_jpeg[: len(coco_jpeg) // 2]), 400, "undecodable_image")

    def test_image_too_many_pixels_refused_before_decode(self, server):
        body = assert_problem(post(server, png_header_only(), ctype="image/png"), 413, "image_too_large")
        assert "megapixels" in body["detail"]

    def test_image_too_many_bytes(self, server):
        data = big_noise_png(2 * 1024 * 1024 + 10)
        r = httpx.post(
            server.http + "/v1/pose", content=data, headers={"Content-Type": "image/png"}, timeout=60
        )
        assert_problem(r, 413, "payload_too_large")

    def test_body_limit_enforced_while_reading(self, server):
        """A chunked body (no Content-Length) is cut off once it passes the limit."""

        def chunks():
            for _ in range(64):
                yield b"\0" * (64 * 1024)

        r = httpx.post(
            server.http + "/v1/pose", content=chunks(), headers={"Content-Type": "image/png"}, timeout=60
        )
        assert_problem(r, 413, "payload_too_large")

    @pytest.mark.parametrize(
        ("boxes", "match"),
        [
            ("[[NaN, 10, 20, 30]]", "NaN"),
            ("[[10, 10, 1e999, 30]]", "NaN or infinite"),
            ("[[10, 10, 0, 30]]", "non-positive"),
            ("[[10, 10, 20, -3]]", "non-positive"),
            ("[[5000, 10, 20, 30]]", "entirely outside"),
            ("[[1, 2, 3]]", "must be"),
            ('[["a", 2, 3, 4]]', "must be"),
            ("{not json", "not valid JSON"),
            (json.dumps([[10, 10, 20, 30]] * 65), "limit"),
        ],
    )
    def test_bad_boxes(self, server, coco_jpeg, boxes, match):
        r = httpx.post(
            server.http + "/v1/pose",
            files={"image": ("x.jpg", coco_jpeg, "image/jpeg")},
            data={"boxes": boxes},
        )
        assert r.status_code in (400, 422)
        body = r.json()
        assert body["type"] == "urn:posesvc:problem:invalid_boxes" and match in body["detail"]

    def test_partly_outside_box_is_fine(self, server, coco_jpeg):
        r = post(server, coco_jpeg, boxes=[[-50, -20, 200, 300]])
        assert r.status_code == 200 and len(r.json()["persons"]) == 1

    def test_bad_options(self, server, coco_jpeg):
        assert_problem(post(server, coco_jpeg, flip="maybe"), 400, "invalid_input")
        assert_problem(post(server, coco_jpeg, format="coco"), 400, "invalid_input")  # needs image_id
        assert_problem(post(server, coco_jpeg, max_persons="-1"), 400, "invalid_input")

    def test_deadline_exceeded(self, server, coco_jpeg):
        r = post(server, coco_jpeg, headers={"X-Request-Timeout-Ms": "0.001"})
        assert_problem(r, 504, "deadline_exceeded")

    def test_overloaded(self, server, coco_jpeg):
        """Far more concurrent requests than the queue (4) holds: some get 429 with Retry-After at once, and
        every request gets either a result or an explicit rejection."""
        boxes = [[100.0 + 5 * i, 50.0, 200.0, 300.0, 0.9] for i in range(8)]
        with cf.ThreadPoolExecutor(24) as pool:
            rs = list(pool.map(lambda _: post(server, coco_jpeg, boxes=boxes, nms="false"), range(24)))
        codes = [r.status_code for r in rs]
        assert set(codes) <= {200, 429}, codes
        assert codes.count(429) >= 1 and codes.count(200) >= 1
        rej = next(r for r in rs if r.status_code == 429)
        assert_problem(rej, 429, "overloaded")
        assert int(rej.headers["Retry-After"]) >= 1

    def test_not_found_is_a_problem(self, server):
        r = httpx.get(server.http + "/v1/nope")
        assert_problem(r, 404, "not_found")


def test_batch_endpoint_in_order(server, coco_jpeg):
    files = [("images", ("a.jpg", coco_jpeg, "image/jpeg")), ("images", ("b.bin", b"junk", "application/octet-stream")),
             ("images", ("c.jpg", coco_jpeg, "image/jpeg"))]  # fmt: skip
    r = httpx.post(server.http + "/v1/pose/batch", files=files, data={"boxes": json.dumps(BOX)}, timeout=120)
    assert r.status_code == 200
    items = r.json()["items"]
    assert [("result" in i and i["result"] is not None) for i in items] == [True, False, True]
    assert items[1]["error"]["type"] == "urn:posesvc:problem:undecodable_image"
    assert items[0]["result"]["persons"][0]["keypoints"] == items[2]["result"]["persons"][0]["keypoints"]


def test_render_returns_an_image(server, coco_jpeg):
    r = httpx.post(server.http + "/v1/pose/render", files={"image": ("x.jpg", coco_jpeg, "image/jpeg")},
                   data={"boxes": json.dumps(BOX)}, timeout=120)  # fmt: skip
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    im = Image.open(io.BytesIO(r.content))
    assert im.size == (640, 429)


def test_raw_body_with_query_options(server, coco_jpeg):
    r = httpx.post(server.http + "/v1/pose", content=coco_jpeg, headers={"Content-Type": "image/jpeg"},
                   params={"boxes": json.dumps(BOX), "format": "coco", "image_id": "196141"}, timeout=120)  # fmt: skip
    assert r.status_code == 200
    assert r.json()[0]["image_id"] == 196141 and len(r.json()[0]["keypoints"]) == 51


def test_models_and_openapi(server):
    m = httpx.get(server.http + "/v1/models").json()
    assert m["models"][0]["name"] == "darkpose_small_fixture" and m["models"][0]["trained"] is True
    assert m["models"][0]["input_size"] == [192, 256] and m["models"][0]["convention"] == "darkpose"
    spec = httpx.get(server.http + "/openapi.json").json()
    assert {
        "/v1/pose",
        "/v1/pose/batch",
        "/v1/pose/render",
        "/v1/models",
        "/healthz",
        "/readyz",
        "/metrics",
    } <= set(spec["paths"])
    content = spec["paths"]["/v1/pose"]["post"]["requestBody"]["content"]
    assert {"multipart/form-data", "image/jpeg", "image/png", "image/webp"} <= set(content)
    assert httpx.get(server.http + "/docs").status_code == 200


# ---------------------------------------------------------------- gRPC
@pytest.fixture(scope="module")
def stub(server):
    ch = grpc.insecure_channel(server.grpc, options=[("grpc.max_send_message_length", 16 * 1024 * 1024)])
    yield pose_pb2_grpc.PoseServiceStub(ch)
    ch.close()


def _req(image: bytes, boxes=BOX, **opts) -> pose_pb2.EstimateRequest:
    req = pose_pb2.EstimateRequest(
        image=image, use_boxes=boxes is not None, options=pose_pb2.PoseOptions(**opts)
    )
    for b in boxes or []:
        req.boxes.append(pose_pb2.Box(x=b[0], y=b[1], w=b[2], h=b[3], score=b[4] if len(b) > 4 else 1.0))
    return req


def _code(stub, req, timeout=120.0) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as exc:
        stub.Estimate(req, timeout=timeout)
    return exc.value


@pytest.fixture
def grpc_healthy_after(stub, coco_jpeg):
    yield
    r = stub.Estimate(_req(coco_jpeg), timeout=120)
    assert len(r.persons) == 1


@pytest.mark.usefixtures("grpc_healthy_after")
class TestGrpc:
    @pytest.mark.parametrize("data", [b"", b"garbage", b"GIF89a" + b"\0" * 20])
    def test_undecodable(self, stub, data):
        e = _code(stub, _req(data))
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert e.details().split(":")[0] in ("undecodable_image", "unsupported_media_type")

    def test_too_many_pixels(self, stub):
        e = _code(stub, _req(png_header_only()))
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and e.details().startswith("image_too_large")

    def test_image_too_many_bytes(self, stub):
        """Under the gRPC message limit (3 MiB) but over the image limit (2 MiB): the engine refuses it."""
        e = _code(stub, _req(big_noise_png(2 * 1024 * 1024 + 10)))
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and e.details().startswith("payload_too_large")

    def test_message_too_large(self, stub):
        e = _code(stub, _req(b"\0" * (4 * 1024 * 1024)))
        assert e.code() == grpc.StatusCode.RESOURCE_EXHAUSTED

    @pytest.mark.parametrize(
        "box",
        [[float("nan"), 1, 2, 3], [1, 1, 0, 5], [1, 1, 5, -1], [9000, 1, 5, 5], [float("inf"), 1, 2, 3]],
    )
    def test_bad_boxes(self, stub, coco_jpeg, box):
        e = _code(stub, _req(coco_jpeg, boxes=[box]))
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and e.details().startswith("invalid_boxes")

    def test_too_many_boxes(self, stub, coco_jpeg):
        e = _code(stub, _req(coco_jpeg, boxes=[[10, 10, 20, 30]] * 65))
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT and "limit" in e.details()

    def test_client_deadline(self, stub, coco_jpeg):
        e = _code(stub, _req(coco_jpeg), timeout=0.001)
        assert e.code() == grpc.StatusCode.DEADLINE_EXCEEDED

    def test_overloaded(self, stub, coco_jpeg):
        boxes = [[100.0 + 5 * i, 50.0, 200.0, 300.0, 0.9] for i in range(8)]

        def call(_):
            try:
                stub.Estimate(_req(coco_jpeg, boxes=boxes, disable_nms=True), timeout=120)
                return "OK", None
            except grpc.RpcError as e:
                return e.code().name, e

        with cf.ThreadPoolExecutor(24) as pool:
            outs = list(pool.map(call, range(24)))
        codes = [c for c, _ in outs]
        assert set(codes) <= {"OK", "RESOURCE_EXHAUSTED"}, codes
        assert "RESOURCE_EXHAUSTED" in codes and "OK" in codes
        err = next(e for c, e in outs if c == "RESOURCE_EXHAUSTED")
        assert err.details().startswith("overloaded")
        assert int(dict(err.trailing_metadata())["retry-after-ms"]) > 0


def test_grpc_batch_in_order(stub, coco_jpeg):
    r = stub.EstimateBatch(
        pose_pb2.EstimateBatchRequest(requests=[_req(coco_jpeg), _req(b"junk"), _req(coco_jpeg)]), timeout=120
    )
    assert [i.WhichOneof("outcome") for i in r.items] == ["result", "error", "result"]
    assert r.items[1].error.code == "undecodable_image"


def test_grpc_health_and_reflection(server):
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    ch = grpc.insecure_channel(server.grpc)
    h = health_pb2_grpc.HealthStub(ch)
    for name in ("", "posesvc.v1.PoseService"):
        assert (
            h.Check(health_pb2.HealthCheckRequest(service=name), timeout=10).status
            == health_pb2.HealthCheckResponse.SERVING
        )
    refl = reflection_pb2_grpc.ServerReflectionStub(ch)
    resp = next(
        refl.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10
        )
    )
    names = {s.name for s in resp.list_services_response.service}
    assert {"posesvc.v1.PoseService", "grpc.health.v1.Health"} <= names
    ch.close()
