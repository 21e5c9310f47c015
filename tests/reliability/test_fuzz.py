"""Fuzzing both transports against a live server: every hostile input gets a 4xx problem+json (REST) or a
non-OK client-error status (gRPC) with a message, never a 5xx/INTERNAL or a crash, and a normal request
right after succeeds. Counts go to ``test-artifacts/reliability-fuzz-*.json``.

``POSESVC_FUZZ_EXAMPLES`` (default 60) sets hypothesis examples per test (the slow run uses more)."""

from __future__ import annotations

import os
import time
from collections import Counter

import grpc
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.transport.grpc.gen.posesvc.v1 import pose_pb2

from .conftest import BOX, estimate_request, small_jpeg, stub, write_summary
from .fuzz_inputs import BOXES_JSON, CONTENT_TYPES, NUM, OPTIONS, VALID, images

EXAMPLES = int(os.environ.get("POSESVC_FUZZ_EXAMPLES", "60"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=os.environ.get("POSESVC_FUZZ_RANDOM") is None,  # reproducible by default
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
#: gRPC codes a bad input may get (client errors, and size/overload)
CLIENT_CODES = {grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.OK}
GOOD = small_jpeg()


#: above this request-line size uvicorn's HTTP parser refuses the request itself (plain-text 4xx, before the
#: app: no problem+json possible); httpx refuses to even build a URL with a query of 64 KiB or more
LONG_URL = 8 * 1024


def check_rest_answer(r: httpx.Response, what: str) -> None:
    assert r.status_code < 500, f"{what}: {r.status_code} {r.text[:300]}"
    if r.status_code >= 400 and len(str(r.request.url)) > LONG_URL:
        return  # refused by the HTTP layer (request line too long): a 4xx, not a crash
    if r.status_code >= 400:
        assert r.headers["content-type"].startswith("application/problem+json"), what
        body = r.json()
        assert body["detail"] and body["type"].startswith("urn:posesvc:problem:"), (what, body)


def rest_ok(base: str) -> None:
    r = httpx.post(base + "/v1/pose", content=GOOD, headers={"Content-Type": "image/jpeg"},
                   params={"boxes": "[[10,10,100,200]]", "flip": "false"}, timeout=60)  # fmt: skip
    assert r.status_code == 200, f"a normal request after a bad one failed: {r.status_code} {r.text[:300]}"


def test_fuzz_rest(rel_server) -> None:
    base = rel_server.http
    statuses: Counter[int] = Counter()
    kinds: Counter[str] = Counter()
    client = httpx.Client(timeout=60)
    t0 = time.monotonic()

    @FUZZ
    @given(img=images(), boxes=BOXES_JSON, opts=OPTIONS, ctype=CONTENT_TYPES, raw=st.booleans())
    def one(img, boxes, opts, ctype, raw) -> None:
        name, data = img
        fields = {k: v for k, v in {**opts, "boxes": boxes}.items() if v is not None}
        if raw:
            try:
                r = client.post(
                    base + "/v1/pose", content=data, params=fields, headers={"Content-Type": ctype}
                )
            except httpx.InvalidURL:  # the client library refuses a query this long: nothing was sent
                kinds["client_refused_long_url"] += 1
                return
        else:
            r = client.post(
                base + "/v1/pose", files={"image": ("x", data, ctype or "image/jpeg")}, data=fields
            )
        statuses[r.status_code] += 1
        kinds[name.split("_trunc")[0]] += 1
        check_rest_answer(r, f"{name} raw={raw} ctype={ctype!r} fields={str(fields)[:200]}")
        rest_ok(base)

    one()
    # explicit extremes: oversized body, body with a lying Content-Length-free stream, wrong routes/methods
    extremes = [
        ("oversized_body", lambda: client.post(base + "/v1/pose", content=b"\xff" * (3 * 1024 * 1024 + 4096),
                                               headers={"Content-Type": "image/jpeg"})),
        ("oversized_chunked", lambda: client.post(base + "/v1/pose", content=iter([b"\0" * 65536] * 60),
                                                  headers={"Content-Type": "image/png"})),
        ("batch_no_images", lambda: client.post(base + "/v1/pose/batch", data={"boxes": "[]"})),
        ("batch_too_many", lambda: client.post(base + "/v1/pose/batch",
                                               files=[("images", ("x", VALID["jpeg"], "image/jpeg"))] * 40)),
        ("render_garbage", lambda: client.post(base + "/v1/pose/render", content=b"GIF89a",
                                               headers={"Content-Type": "image/png"})),
        ("get_on_post", lambda: client.get(base + "/v1/pose")),
        ("unknown_route", lambda: client.post(base + "/v1/nope", content=b"x")),
        ("bad_timeout_header", lambda: client.post(base + "/v1/pose", content=GOOD, headers={
            "Content-Type": "image/jpeg", "X-Request-Timeout-Ms": "nan"})),
        ("zero_timeout_header", lambda: client.post(base + "/v1/pose", content=GOOD, headers={
            "Content-Type": "image/jpeg", "X-Request-Timeout-Ms": "0"})),
    ]  # fmt: skip
    for name, call in extremes:
        r = call()
        statuses[r.status_code] += 1
        kinds[name] += 1
        check_rest_answer(r, name)
        assert r.status_code >= 400, name
        rest_ok(base)
    client.close()
    write_summary("fuzz-rest", {"inputs": sum(statuses.values()), "statuses": {str(k): v for k, v in sorted(statuses.items())},
                                "input_kinds": len(kinds), "server_errors": sum(v for k, v in statuses.items() if k >= 500),
                                "seconds": round(time.monotonic() - t0, 1)})  # fmt: skip


def grpc_ok(pose) -> None:
    pose.Estimate(estimate_request(GOOD, [[10, 10, 100, 200]]), timeout=60)


BOXES_PB = st.lists(st.tuples(NUM, NUM, NUM, NUM, st.one_of(st.none(), NUM)), max_size=6) | st.integers(
    65, 3000
).map(lambda n: [(10.0, 10.0, 50.0, 50.0, None)] * n)
FLOAT = st.floats(allow_nan=True, allow_infinity=True, width=32)


def _float(v: object) -> float:
    return float(v) if not isinstance(v, int) or abs(v) < 2**1000 else 0.0  # type: ignore[arg-type]


def _boxes(msg, boxes) -> None:
    for x, y, w, h, s in boxes:
        b = msg.boxes.add(x=_float(x), y=_float(y), w=_float(w), h=_float(h))
        if s is not None:
            b.score = _float(s)


def test_fuzz_grpc(rel_server) -> None:
    ch, pose = stub(rel_server.grpc)
    codes: Counter[str] = Counter()
    t0 = time.monotonic()

    @FUZZ
    @given(img=images(), boxes=BOXES_PB, use_boxes=st.booleans(), flip=st.one_of(st.none(), st.booleans()),
           min_score=FLOAT, max_persons=st.integers(0, 2**32 - 1), disable_nms=st.booleans())  # fmt: skip
    def one(img, boxes, use_boxes, flip, min_score, max_persons, disable_nms) -> None:
        name, data = img
        req = pose_pb2.EstimateRequest(image=data, use_boxes=use_boxes)
        _boxes(req, boxes)
        req.options.min_score = min_score
        req.options.max_persons = max_persons
        req.options.disable_nms = disable_nms
        if flip is not None:
            req.options.flip = flip
        try:
            pose.Estimate(req, timeout=60)
            codes["OK"] += 1
        except grpc.RpcError as err:
            codes[err.code().name] += 1
            assert err.code() in CLIENT_CODES, f"{name}: {err.code()} {err.details()}"
            assert err.details(), name
        grpc_ok(pose)

    one()

    # streams: frames with random encoded/raw images and boxes; each frame is answered (ERROR or PROCESSED)
    @settings(FUZZ, max_examples=max(5, EXAMPLES // 4))
    @given(frames=st.lists(st.tuples(images(), st.integers(-3, 40), st.integers(-3, 40), st.binary(max_size=600), st.booleans(), BOXES_PB),
                           min_size=1, max_size=4),
           detect_every=st.integers(0, 2**32 - 1), max_in_flight=st.integers(0, 64), beta=FLOAT)  # fmt: skip
    def stream(frames, detect_every, max_in_flight, beta) -> None:
        msgs = []
        for i, ((_n, data), w, h, rgb, use_raw, boxes) in enumerate(frames):
            f = pose_pb2.Frame(frame_id=i, use_boxes=bool(boxes))
            if use_raw:
                f.raw.width, f.raw.height, f.raw.rgb = max(w, 0), max(h, 0), rgb
            else:
                f.image = data
            _boxes(f, boxes)
            if i == 0:
                f.options.detect_every = detect_every
                f.options.max_in_flight = max_in_flight
                f.options.one_euro_beta = beta
                f.options.pose.flip = False
            msgs.append(f)
        try:
            answers = list(pose.StreamEstimate(iter(msgs), timeout=60))
            codes["stream_OK"] += 1
            assert len(answers) == len(msgs)
            for a in answers:
                codes[f"frame_{pose_pb2.FrameOutcome.Name(a.outcome)}"] += 1
                if a.outcome == pose_pb2.ERROR:
                    assert a.error.code and a.error.message
                    assert a.error.code not in ("internal", "engine_error"), a.error
        except grpc.RpcError as err:
            codes["stream_" + err.code().name] += 1
            assert err.code() in CLIENT_CODES, f"stream: {err.code()} {err.details()}"
        grpc_ok(pose)

    stream()

    # raw garbage where a protobuf message is expected, and an oversized message
    raw_call = ch.unary_unary(
        "/posesvc.v1.PoseService/Estimate", request_serializer=None, response_deserializer=None
    )
    for garbage in (
        b"\xff" * 16,
        b"\x0a\xff\xff\xff\xff\x0f",
        b"\x12\x05\x0d\x00\x00\xc0\x7f",
        os.urandom(256),
    ):
        try:
            raw_call(garbage, timeout=30)
            codes["raw_OK"] += 1
        except grpc.RpcError as err:
            codes["raw_" + err.code().name] += 1
            assert err.code() not in (grpc.StatusCode.UNKNOWN,), err.details()
            assert err.details()
        grpc_ok(pose)
    with pytest.raises(grpc.RpcError) as ei:
        pose.Estimate(estimate_request(b"\0" * (4 * 1024 * 1024), BOX), timeout=30)
    assert ei.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    codes["oversized_RESOURCE_EXHAUSTED"] += 1
    grpc_ok(pose)
    ch.close()
    n_inputs = sum(v for k, v in codes.items() if not k.startswith("frame_"))
    write_summary("fuzz-grpc", {"inputs": n_inputs, "codes": dict(sorted(codes.items())),
                                "seconds": round(time.monotonic() - t0, 1)})  # fmt: skip
