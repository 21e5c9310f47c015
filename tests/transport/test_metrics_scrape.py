"""``/metrics`` after real REST and gRPC traffic (including rejected requests): every required metric exists with
its type and labels, counters move by exactly the traffic sent and histogram counts match request counts."""

from __future__ import annotations

import json

import grpc
import httpx
from prometheus_client.parser import text_string_to_metric_families

from service.transport.grpc.gen.posesvc.v1 import pose_pb2, pose_pb2_grpc

BOX = [[100.0, 50.0, 200.0, 300.0, 0.9]]


#: the served card: the `model` label of its batch and readiness series
CARD = "darkpose_small_fixture"


def scrape(server) -> tuple[dict[str, str], dict[tuple[str, tuple[tuple[str, str], ...]], float]]:
    text = httpx.get(server.http + "/metrics", timeout=30).text
    types, samples = {}, {}
    for fam in text_string_to_metric_families(text):
        types[fam.name] = fam.type
        for s in fam.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return types, samples


def val(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


REQUIRED = {
    "posesvc_requests": ("counter", {"transport", "method", "code"}),
    "posesvc_request_duration_seconds": ("histogram", {"transport", "method"}),
    "posesvc_stage_duration_seconds": ("histogram", {"model", "stage"}),
    "posesvc_batch_queue_wait_seconds": ("histogram", {"model"}),
    "posesvc_batch_size": ("histogram", {"model", "unit"}),
    "posesvc_batch_queue_items": ("gauge", {"model"}),
    "posesvc_requests_rejected": ("counter", {"reason"}),
    "posesvc_persons_per_image": ("histogram", {"source"}),
    "posesvc_keypoint_score": ("histogram", {"model", "joint"}),
    "posesvc_stream_frames": ("counter", {"outcome"}),
    "posesvc_active_streams": ("gauge", set()),
    "posesvc_build_info": (
        "gauge",
        {"version", "pose_model", "detector", "device", "precision", "flip_test", "decoder", "backend"},
    ),
    "posesvc_model_ready": ("gauge", {"model"}),
}


def test_metrics_move_with_traffic(server, coco_jpeg):
    types0, before = scrape(server)
    for name, (typ, _labels) in REQUIRED.items():
        assert types0.get(name) == typ, (name, types0.get(name))

    n_rest, n_grpc = 3, 2
    for _ in range(n_rest):
        r = httpx.post(server.http + "/v1/pose", files={"image": ("a.jpg", coco_jpeg, "image/jpeg")},
                       data={"boxes": json.dumps(BOX)}, timeout=120)  # fmt: skip
        assert r.status_code == 200
    bad = httpx.post(
        server.http + "/v1/pose", files={"image": ("b.jpg", b"junk", "image/jpeg")}, data={"boxes": "[]"}
    )
    assert bad.status_code == 400
    ch = grpc.insecure_channel(server.grpc)
    stub = pose_pb2_grpc.PoseServiceStub(ch)
    req = pose_pb2.EstimateRequest(
        image=coco_jpeg, use_boxes=True, boxes=[pose_pb2.Box(x=100, y=50, w=200, h=300, score=0.9)]
    )
    for _ in range(n_grpc):
        assert len(stub.Estimate(req, timeout=120).persons) == 1
    try:
        stub.Estimate(pose_pb2.EstimateRequest(image=b"junk", use_boxes=True), timeout=30)
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.INVALID_ARGUMENT
    # a short video stream with client boxes on every frame
    n_frames = 3
    frames = [pose_pb2.Frame(frame_id=i, image=coco_jpeg, use_boxes=True, boxes=[pose_pb2.Box(x=100 + i, y=50, w=200, h=300, score=0.9)])
              for i in range(n_frames)]  # fmt: skip
    answers = list(stub.StreamEstimate(iter(frames), timeout=120))
    assert [a.frame_id for a in answers] == list(range(n_frames))
    ch.close()

    _, after = scrape(server)

    def d(name, **labels):
        return val(after, name, **labels) - val(before, name, **labels)

    # counters: exactly the traffic
    assert d("posesvc_requests_total", transport="rest", method="estimate", code="200") == n_rest
    assert d("posesvc_requests_total", transport="rest", method="estimate", code="400") == 1
    assert d("posesvc_requests_total", transport="grpc", method="estimate", code="OK") == n_grpc
    assert d("posesvc_requests_total", transport="grpc", method="estimate", code="INVALID_ARGUMENT") == 1
    assert d("posesvc_requests_rejected_total", reason="invalid_image") == 2
    # histogram counts match request counts
    assert d("posesvc_request_duration_seconds_count", transport="rest", method="estimate") == n_rest + 1
    assert d("posesvc_request_duration_seconds_count", transport="grpc", method="estimate") == n_grpc + 1
    assert d("posesvc_requests_total", transport="grpc", method="stream_frame", code="OK") == n_frames
    assert d("posesvc_stream_frames_total", outcome="processed") == n_frames
    assert val(after, "posesvc_active_streams") == 0  # the stream ended and was freed
    ok = n_rest + n_grpc + n_frames
    assert d("posesvc_stage_duration_seconds_count", model=CARD, stage="decode_image") == ok  # junk never decodes
    assert d("posesvc_stage_duration_seconds_count", model=CARD, stage="serialize") == ok
    batches = d("posesvc_batch_size_count", model=CARD, unit="images")
    assert 1 <= batches <= ok and d("posesvc_batch_size_sum", model=CARD, unit="images") == ok
    assert d("posesvc_batch_size_sum", model=CARD, unit="crops") == ok  # one box each
    assert d("posesvc_stage_duration_seconds_count", model=CARD, stage="pose_forward") == batches
    assert d("posesvc_batch_queue_wait_seconds_count", model=CARD) == ok
    assert d("posesvc_persons_per_image_count", source="client") == ok
    assert d("posesvc_persons_per_image_sum", source="client") == ok
    assert d("posesvc_keypoint_score_count", model=CARD, joint="nose") == ok
    assert d("posesvc_keypoint_score_count", model=CARD, joint="right_ankle") == ok
    # gauges
    assert val(after, "posesvc_model_ready", model=CARD) == 1
    assert val(after, "posesvc_batch_queue_items", model=CARD) == 0
    info = [k for k in after if k[0] == "posesvc_build_info"]
    assert len(info) == 1 and dict(info[0][1])["pose_model"] == "darkpose_small_fixture"
    assert dict(info[0][1])["backend"] in ("onnxruntime", "openvino")  # auto on CPU: the faster of the two
    for name, (_typ, labels) in REQUIRED.items():
        names = {name + sfx for sfx in ("", "_total", "_bucket", "_sum", "_count", "_created")}
        fam_samples = [k for k in after if k[0] in names]
        assert fam_samples, name
        got = set().union(*(set(dict(k[1])) - {"le"} for k in fam_samples))
        assert got == labels, (name, got, labels)
