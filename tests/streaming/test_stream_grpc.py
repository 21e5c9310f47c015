"""StreamEstimate over a real loopback gRPC server: order, track ids, drop policies, cancellation, isolation,
detect_every with tracked boxes."""

from __future__ import annotations

import threading
import time

import numpy as np

from service.client.grpc_client import GrpcPoseClient, StreamFrame
from service.schemas import PoseOptions
from service.streaming.session import StreamOptions, boxes_from_keypoints

from .conftest import Clip, LiveServer

FAST = PoseOptions(flip=False)
# With the random fixture weights keypoints are noise, so OKS association is meaningless here (it is
# unit-tested on synthetic poses in test_tracking.py); these tests track by box IoU.


def frames(clip: Clip, boxes: str = "all", raw: bool = False, n: int | None = None) -> list[StreamFrame]:
    out = []
    for i in range(n or len(clip.frames)):
        j = i % len(clip.frames)
        b = (
            None
            if boxes == "none"
            else clip.boxes[j].tolist()
            if boxes == "all"
            else clip.boxes[j][:1].tolist()
        )
        if boxes == "first" and i > 0:
            b = None
        image = clip.frames[j] if raw else clip.pngs[j]
        out.append(StreamFrame(frame_id=100 + i, image=image, boxes=b, timestamp=i / 30.0))
    return out


def track_ids(answer) -> list[int]:
    return [p.track_id for p in answer.result.persons]


def test_order_frame_ids_and_stable_track_ids(live: LiveServer, clip: Clip) -> None:
    client = GrpcPoseClient(live.target)
    opts = StreamOptions(pose=FAST, tracker="iou", max_in_flight=4, smoothing=True)
    answers = list(client.stream(frames(clip), opts, timeout_s=60))
    assert [a.frame_id for a in answers] == [100 + i for i in range(len(clip.frames))]
    assert all(a.outcome == "processed" for a in answers)
    # Persons follow the client boxes' order; each keeps its id, the two ids differ.
    ids = [track_ids(a) for a in answers]
    assert all(len(x) == 2 for x in ids), ids
    assert all(x == ids[0] for x in ids), ids
    assert ids[0][0] != ids[0][1]
    client.close()


def test_raw_rgb_frames(live: LiveServer, clip: Clip) -> None:
    client = GrpcPoseClient(live.target)
    answers = list(
        client.stream(frames(clip, raw=True, n=3), StreamOptions(pose=FAST, tracker="iou"), timeout_s=60)
    )
    assert [a.outcome for a in answers] == ["processed"] * 3
    assert answers[0].result.image_size == (clip.frames[0].shape[1], clip.frames[0].shape[0])
    # A raw payload whose size does not match fails that frame only.
    bad = frames(clip, raw=True, n=3)
    bad[1] = StreamFrame(frame_id=bad[1].frame_id, image=clip.pngs[1][:0] + b"", boxes=bad[1].boxes)
    answers = list(client.stream(bad, StreamOptions(pose=FAST, tracker="iou"), timeout_s=60))
    assert [a.outcome for a in answers] == ["processed", "error", "processed"]
    assert answers[1].error is not None and answers[1].error.code == "invalid_input"
    client.close()


def test_latest_drops_block_does_not(live: LiveServer, clip: Clip) -> None:
    client = GrpcPoseClient(live.target)
    before = live.metrics.stream_frames_total.labels(outcome="dropped")._value.get()
    n = 30
    block = list(
        client.stream(
            frames(clip, n=n), StreamOptions(pose=FAST, tracker="iou", max_in_flight=1), timeout_s=60
        )
    )
    assert [a.frame_id for a in block] == [100 + i for i in range(n)]
    assert all(a.outcome == "processed" for a in block)

    def slow_reader():  # the client reads answers slowly; the engine is slower than the sender
        for a in client.stream(frames(clip, n=n), StreamOptions(pose=FAST, tracker="iou", max_in_flight=1, policy="latest"),
                               timeout_s=60):  # fmt: skip
            time.sleep(0.002)
            yield a

    latest = list(slow_reader())
    assert [a.frame_id for a in latest] == [100 + i for i in range(n)]  # every frame answered, in order
    dropped = [a for a in latest if a.outcome == "dropped"]
    assert dropped and all(a.result is None for a in dropped)
    assert latest[-1].outcome == "processed"  # the newest frame is never the one dropped
    after = live.metrics.stream_frames_total.labels(outcome="dropped")._value.get()
    assert after - before == len(dropped)
    client.close()


def test_cancel_frees_state(live: LiveServer, clip: Clip) -> None:
    client = GrpcPoseClient(live.target)
    reg = live.grpc.streams
    gen = client.stream(
        frames(clip, n=200), StreamOptions(pose=FAST, tracker="iou", max_in_flight=2), timeout_s=60
    )
    first = next(gen)
    assert first.frame_id == 100
    assert len(reg) == 1 and live.metrics.active_streams._value.get() == 1
    gen.close()  # cancels the RPC
    end = time.monotonic() + 10
    while len(reg) and time.monotonic() < end:
        time.sleep(0.02)
    assert len(reg) == 0
    assert live.metrics.active_streams._value.get() == 0
    # Its engine work is gone too (nothing of it left in flight), and the server still streams fine.
    end = time.monotonic() + 10
    while live.engine.stats().in_flight and time.monotonic() < end:
        time.sleep(0.02)
    assert live.engine.stats().in_flight == 0
    assert (
        len(list(client.stream(frames(clip, n=2), StreamOptions(pose=FAST, tracker="iou"), timeout_s=60)))
        == 2
    )
    client.close()


def test_concurrent_streams_do_not_share_tracker_state(live: LiveServer, clip: Clip) -> None:
    results: dict[str, list] = {}

    def run(name: str, which: str) -> None:
        client = GrpcPoseClient(live.target)
        results[name] = list(
            client.stream(frames(clip, boxes=which), StreamOptions(pose=FAST, tracker="iou"), timeout_s=60)
        )
        client.close()

    threads = [
        threading.Thread(target=run, args=("a", "one")),
        threading.Thread(target=run, args=("b", "all")),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    a = [track_ids(x) for x in results["a"]]
    b = [track_ids(x) for x in results["b"]]
    assert all(x == [1] for x in a), a  # ids start at 1 in every stream
    assert all(x == [1, 2] for x in b), b


def test_detect_every_uses_tracked_boxes(live: LiveServer, clip: Clip) -> None:
    client = GrpcPoseClient(live.target)
    calls0, images0 = live.engine.stats().detector_calls, live.detector.images
    skipped0 = live.metrics.stream_frames_total.labels(outcome="detection_skipped")._value.get()
    opts = StreamOptions(pose=FAST, tracker="iou", detect_every=5, max_in_flight=4)
    n = 10
    answers = list(client.stream(frames(clip, boxes="none", n=n), opts, timeout_s=60))
    assert [a.frame_id for a in answers] == [100 + i for i in range(n)]
    assert [i for i, a in enumerate(answers) if a.detector_ran] == [0, 5]
    assert live.detector.images - images0 == 2  # the detector saw 2 of 10 frames
    assert live.engine.stats().detector_calls - calls0 == 2
    skipped = live.metrics.stream_frames_total.labels(outcome="detection_skipped")._value.get() - skipped0
    assert skipped == 8
    for i, a in enumerate(answers):
        assert a.result is not None and len(a.result.persons) == 2
        if i % 5 == 0:
            assert a.result.boxes_source == "detector"
            continue
        assert a.result.boxes_source == "tracker"
        prev = {p.track_id: p for p in answers[i - 1].result.persons}
        for p in a.result.persons:
            q = prev[p.track_id]  # same person: the box comes from its keypoints one frame earlier
            want = boxes_from_keypoints(
                q.keypoints[None], np.array([q.bbox]), opts.box_enlarge, opts.keypoint_threshold,
                a.result.image_size,
            )[0, :4]  # fmt: skip
            np.testing.assert_allclose(p.bbox, want, atol=0.05)
    # Track ids are stable across detection and tracked frames.
    assert all(sorted(track_ids(a)) == [1, 2] for a in answers)
    client.close()


def test_idle_stream_expires(live: LiveServer, clip: Clip) -> None:
    """The server's TTL is 2 s: a stream that sends one frame and then nothing is ended and freed."""
    import pytest

    from service.client.base import ClientError

    client = GrpcPoseClient(live.target)
    stall = threading.Event()

    def stalled():
        yield frames(clip, n=1)[0]
        stall.wait(15)

    with pytest.raises(ClientError) as err:
        for _ in client.stream(stalled(), StreamOptions(pose=FAST, tracker="iou"), timeout_s=30):
            pass
    stall.set()
    assert err.value.code == "stream_idle"
    assert len(live.grpc.streams) == 0
    client.close()
