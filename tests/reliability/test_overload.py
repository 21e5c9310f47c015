"""A bounded burst far above capacity (queue_size 4): every request gets a result or an explicit rejection
(429 + Retry-After / RESOURCE_EXHAUSTED + retry-after-ms), none outlives its deadline, the queue stays
bounded, and afterwards latency returns to baseline."""

from __future__ import annotations

import concurrent.futures as cf
import os
import statistics
import threading
import time
from collections import Counter

import grpc
import httpx

from .conftest import estimate_request, small_jpeg, stub, write_summary

N_REST = int(os.environ.get("POSESVC_BURST_REST", "60"))
N_GRPC = int(os.environ.get("POSESVC_BURST_GRPC", "40"))
DEADLINE_S = 10.0
SLACK_S = 3.0
QUEUE_SIZE = 4  # tests/transport/conftest.py LIMITS
IMG = small_jpeg(480, 640, seed=3)
BOXES = "[" + ",".join(f"[{10 + 5 * i},{10 + 5 * i},200,300]" for i in range(4)) + "]"  # 4 crops per image


def one_rest(client: httpx.Client, base: str) -> tuple[int, float, str | None]:
    t0 = time.monotonic()
    r = client.post(base + "/v1/pose", content=IMG, params={"boxes": BOXES, "flip": "false"},
                    headers={"Content-Type": "image/jpeg", "X-Request-Timeout-Ms": str(int(DEADLINE_S * 1000))},
                    timeout=DEADLINE_S + 30)  # fmt: skip
    return r.status_code, time.monotonic() - t0, r.headers.get("retry-after")


def latency(client: httpx.Client, base: str, n: int = 7) -> float:
    out = []
    for _ in range(n):
        st, dt, _ = one_rest(client, base)
        assert st == 200
        out.append(dt)
    return statistics.median(out)


def queue_depth(base: str) -> float:
    for line in httpx.get(base + "/metrics", timeout=5).text.splitlines():
        if line.startswith("posesvc_batch_queue_items"):
            return float(line.split()[-1])
    return 0.0


def test_burst_rest_and_grpc_then_recovery(rel_server) -> None:
    base = rel_server.http
    client = httpx.Client(limits=httpx.Limits(max_connections=N_REST + 8))
    baseline = latency(client, base)

    depths: list[float] = []
    stop = threading.Event()

    def sample_queue() -> None:
        while not stop.is_set():
            depths.append(queue_depth(base))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample_queue, daemon=True)
    sampler.start()
    ch, pose = stub(rel_server.grpc)
    req = estimate_request(IMG, [[10.0 + 5 * i, 10.0 + 5 * i, 200.0, 300.0] for i in range(4)])

    def one_grpc() -> tuple[str, float, str | None]:
        t0 = time.monotonic()
        try:
            pose.Estimate(req, timeout=DEADLINE_S)
            return "OK", time.monotonic() - t0, None
        except grpc.RpcError as err:
            hint = dict(err.trailing_metadata() or ()).get("retry-after-ms")  # type: ignore[attr-defined]
            return err.code().name, time.monotonic() - t0, hint  # type: ignore[attr-defined]

    t0 = time.monotonic()
    with cf.ThreadPoolExecutor(N_REST + N_GRPC) as ex:
        rest = [ex.submit(one_rest, client, base) for _ in range(N_REST)]
        grpcs = [ex.submit(one_grpc) for _ in range(N_GRPC)]
        rest_out = [f.result() for f in rest]
        grpc_out = [f.result() for f in grpcs]
    burst_s = time.monotonic() - t0
    stop.set()
    sampler.join(5)
    ch.close()

    rest_codes = Counter(st for st, _, _ in rest_out)
    grpc_codes = Counter(c for c, _, _ in grpc_out)
    # a result, an explicit rejection, or an explicit deadline answer (admitted, not done in time): nothing else
    assert set(rest_codes) <= {200, 429, 504}, rest_codes
    assert set(grpc_codes) <= {"OK", "RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED"}, grpc_codes
    assert rest_codes[429] + grpc_codes["RESOURCE_EXHAUSTED"] > 0, "the burst did not overload the server"
    assert all(h and int(h) >= 1 for st, _, h in rest_out if st == 429), "429 without Retry-After"
    assert all(h and int(h) > 0 for c, _, h in grpc_out if c == "RESOURCE_EXHAUSTED"), "no retry-after-ms"
    worst = max(dt for _, dt, _ in rest_out + grpc_out)  # type: ignore[operator]
    assert worst < DEADLINE_S + SLACK_S, worst
    assert depths and max(depths) <= QUEUE_SIZE, max(depths)

    time.sleep(1.0)
    after = latency(client, base)
    client.close()
    assert after <= 2 * baseline + 0.05, (baseline, after)
    write_summary("overload", {
        "sent": N_REST + N_GRPC, "rest": {str(k): v for k, v in rest_codes.items()}, "grpc": dict(grpc_codes),
        "rejected": rest_codes[429] + grpc_codes["RESOURCE_EXHAUSTED"],
        "deadline_exceeded": rest_codes[504] + grpc_codes["DEADLINE_EXCEEDED"], "failed": 0, "lost": 0,
        "worst_latency_s": round(worst, 3), "deadline_s": DEADLINE_S, "max_queue_depth": max(depths),
        "queue_size": QUEUE_SIZE, "burst_s": round(burst_s, 2),
        "baseline_latency_ms": round(baseline * 1000, 1), "after_latency_ms": round(after * 1000, 1),
    })  # fmt: skip
