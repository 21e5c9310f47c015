"""Pure parts: tracker (OKS / IoU, max-missing, ids never reused), One-Euro smoother, box propagation,
session detect-every plan, registry TTL."""

from __future__ import annotations

import numpy as np
import pytest

from service.schemas import Person, PoseResult
from service.streaming.registry import StreamRegistry
from service.streaming.session import StreamOptions, StreamSession, boxes_from_keypoints
from service.streaming.smoothing import KeypointSmoother
from service.streaming.tracker import Tracker, greedy_match, iou_matrix, oks_matrix

RNG = np.random.default_rng(0)
POSE = RNG.uniform(0, 100, size=(17, 2))


def person(dx: float, dy: float, noise: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    kp = np.concatenate(
        [POSE + np.array([dx, dy]) + RNG.normal(0, noise, (17, 2)), np.full((17, 1), 0.9)], axis=1
    )
    box = np.array([kp[:, 0].min(), kp[:, 1].min(), np.ptp(kp[:, 0]), np.ptp(kp[:, 1])])
    return box, kp


def test_iou_and_oks_matrices() -> None:
    a = np.array([[0, 0, 10, 10], [100, 100, 10, 10]], dtype=float)
    b = np.array([[5, 0, 10, 10]], dtype=float)
    np.testing.assert_allclose(iou_matrix(a, b), [[50 / 150], [0.0]])
    assert iou_matrix(a, np.zeros((0, 4))).shape == (2, 0)
    _, k1 = person(0, 0)
    _, k2 = person(300, 0)
    sim = oks_matrix(np.stack([k1, k2]), np.stack([k1]), np.array([100.0 * 100.0]))
    assert sim[0, 0] == pytest.approx(1.0) and sim[1, 0] < 1e-6


def test_greedy_match_best_first() -> None:
    sim = np.array([[0.9, 0.8], [0.85, 0.1]])
    assert sorted(greedy_match(sim, 0.3)) == [(0, 0)]  # (1, 1) is below the threshold
    assert sorted(greedy_match(sim, 0.05)) == [(0, 0), (1, 1)]


@pytest.mark.parametrize("kind", ["oks", "iou"])
def test_tracker_keeps_ids_and_never_reuses(kind: str) -> None:
    t = Tracker(kind, match_threshold=0.3, max_missing=2)  # type: ignore[arg-type]
    ids = []
    for f in range(6):  # two persons walking right, 4 px per frame, noisy joints
        (b1, k1), (b2, k2) = person(4 * f, 0, 1.0), person(4 * f + 250, 0, 1.0)
        order = [0, 1] if f % 2 else [1, 0]  # detection order changes
        boxes, kps = np.stack([b1, b2])[order], np.stack([k1, k2])[order]
        got = t.update(boxes, kps)
        ids.append([got[order.index(0)], got[order.index(1)]])
    assert all(x == [ids[0][0], ids[0][1]] for x in ids) and ids[0][0] != ids[0][1]
    # Person 2 leaves for longer than max_missing, then comes back: a new id (old ones never reused).
    for _ in range(3):
        t.update(*[np.stack([x]) for x in person(24, 0, 1.0)])
    back = t.update(*[np.stack(x) for x in zip(person(28, 0), person(278, 0), strict=True)])
    assert back[0] == ids[0][0] and back[1] not in (ids[0][0], ids[0][1]) and back[1] == 3


def test_one_euro_smooths_jitter_and_follows_motion() -> None:
    sm = KeypointSmoother(min_cutoff=1.0, beta=0.0)
    noisy = [POSE + RNG.normal(0, 2.0, (17, 2)) for _ in range(60)]
    out = [sm(1, np.concatenate([n, np.ones((17, 1))], axis=1), i / 30.0)[:, :2] for i, n in enumerate(noisy)]
    assert np.std(np.stack(out[10:]) - POSE) < 0.5 * np.std(np.stack(noisy[10:]) - POSE)
    fast = KeypointSmoother(min_cutoff=1.0, beta=1.0)  # a high beta follows a fast move with little lag
    for i in range(30):
        last = fast(1, np.concatenate([POSE + np.array([10.0 * i, 0.0]), np.ones((17, 1))], axis=1), i / 30.0)
    assert abs(float(last[0, 0]) - (POSE[0, 0] + 290.0)) < 15.0
    sm.forget(set())
    assert not sm.states


def test_boxes_from_keypoints_enlarge_fallback_and_clip() -> None:
    kp = np.zeros((2, 17, 3))
    kp[0, :, :2] = [[10, 20], [30, 60]] * 8 + [[20, 40]]
    kp[0, :, 2] = 0.9
    kp[1, :, 2] = 0.05  # nobody visible → previous box
    prev = np.array([[0, 0, 50, 50], [5, 5, 7, 7]], dtype=float)
    out = boxes_from_keypoints(kp, prev, 1.5, 0.2)
    np.testing.assert_allclose(out[0, :4], [5, 10, 30, 60])  # 20×40 around (20, 40), ×1.5
    np.testing.assert_allclose(out[1, :4], [5, 5, 7, 7])
    clipped = boxes_from_keypoints(kp, prev, 1.5, 0.2, image_size=(25, 50))
    np.testing.assert_allclose(clipped[0, :4], [5, 10, 20, 40])


def result_with(boxes: list[list[float]], kps: list[np.ndarray]) -> PoseResult:
    persons = tuple(Person(tuple(b), 1.0, 1.0, k.astype(np.float32)) for b, k in zip(boxes, kps, strict=True))  # type: ignore[arg-type]
    return PoseResult((640, 480), persons, "m", True, "detector")


def test_session_plans_detect_every() -> None:
    s = StreamSession("s", StreamOptions(detect_every=3))
    b, k = person(0, 0)
    plans = []
    for _ in range(7):
        src, _boxes = s.plan(client_boxes=False)
        plans.append(src)
        s.apply(result_with([b.tolist()], [k]), 0.0)
    assert plans == ["detector", "tracker", "tracker", "detector", "tracker", "tracker", "detector"]
    assert (s.detector_frames, s.tracked_frames) == (3, 4)
    # Nobody in the last frame → the next frame detects even if not due.
    s.apply(result_with([], []), 0.0)
    assert s.plan(client_boxes=False)[0] == "detector"


def test_registry_ttl_and_counts() -> None:
    counts: list[int] = []
    reg = StreamRegistry(ttl_s=5.0, on_count=counts.append)
    expired: list[str] = []
    a = reg.open(StreamOptions(), client="c1", on_expire=lambda: expired.append("a"))
    b = reg.open(StreamOptions(), client="c1")
    c = reg.open(StreamOptions(), client="c2")
    assert len(reg) == 3 and reg.count_for("c1") == 2 and counts == [1, 2, 3]
    b.last_seen = c.last_seen = a.last_seen + 10.0
    assert reg.sweep(now=a.last_seen + 6.0) == [a.stream_id]
    assert len(reg) == 2
    assert expired == ["a"] and a.stream_id not in reg and b.stream_id in reg
    reg.close(b.stream_id)
    reg.close(b.stream_id)  # idempotent
    assert counts[-1] == len(reg)
