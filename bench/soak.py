"""Soak run (not a test by itself): mixed REST + gRPC streaming traffic against a ``posesvc serve`` process for
a bounded time, sampling the server's RSS, threads and open file descriptors (``/proc/<pid>``) and, on CUDA,
``posesvc_gpu_memory_used_bytes`` every ``--sample-s``. Growth is measured after warm-up (the first
``--warmup-frac`` of the run): ``end`` (median of the last 10 % of samples) against ``base`` (median of the
10 % right after warm-up).

    python bench/soak.py [--duration-s 600] [--json out.json]     # starts its own server (fixture model)

Exit status 1 when RSS grows by 5 % or more, fds or threads grow by more than a small constant, any request
is lost (no answer) or any answer is a 5xx / INTERNAL. ``tests/reliability/test_soak.py`` runs it for ~40 s
in the default test run and for 10 minutes under ``-m slow``.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import grpc  # noqa: E402
import httpx  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from service.transport.grpc.gen.posesvc.v1 import pose_pb2, pose_pb2_grpc  # noqa: E402

RSS_LIMIT = 0.05
FD_SLACK = 8
THREAD_SLACK = 4


def _jpeg(w: int, h: int, seed: int) -> bytes:
    arr = np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=80)
    return buf.getvalue()


def proc_sample(pid: int) -> dict[str, int]:
    rss = threads = 0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1])
        elif line.startswith("Threads:"):
            threads = int(line.split()[1])
    return {"rss_kb": rss, "threads": threads, "fds": len(os.listdir(f"/proc/{pid}/fd"))}


def gpu_bytes(http: str, client: httpx.Client) -> float | None:
    total, seen = 0.0, False
    for line in client.get(http + "/metrics", timeout=5).text.splitlines():
        if line.startswith("posesvc_gpu_memory_used_bytes{"):
            total += float(line.split()[-1])
            seen = True
    return total if seen else None


def soak(http: str, grpc_target: str, pid: int, duration_s: float, sample_s: float = 1.0,
         warmup_frac: float = 0.2, rest_workers: int = 2, stream_workers: int = 1,
         log: Callable[[str], None] = print) -> dict[str, Any]:  # fmt: skip
    """Drive traffic for ``duration_s`` (s) and return counts and growth figures (see the module doc)."""
    images = [_jpeg(320 + 32 * i, 400, i) for i in range(4)]
    stop = threading.Event()
    counts: Counter[str] = Counter()
    lock = threading.Lock()

    def count(key: str) -> None:
        with lock:
            counts[key] += 1

    def rest_loop(k: int) -> None:
        with httpx.Client(timeout=60) as c:
            i = k
            while not stop.is_set():
                i += 1
                img = images[i % len(images)]
                params = {"flip": "false"}
                if i % 5:
                    params["boxes"] = "[[10,10,150,250],[120,40,150,300]]"
                if i % 17 == 0:  # a bad input now and then (its error path must not leak either)
                    r = c.post(
                        http + "/v1/pose",
                        content=img[: len(img) // 3],
                        headers={"Content-Type": "image/jpeg"},
                    )
                else:
                    r = c.post(
                        http + "/v1/pose", content=img, params=params, headers={"Content-Type": "image/jpeg"}
                    )
                count(f"rest_{r.status_code}")
                if r.status_code == 429:
                    time.sleep(0.05)

    def stream_loop(k: int) -> None:
        ch = grpc.insecure_channel(grpc_target)
        pose = pose_pb2_grpc.PoseServiceStub(ch)
        n = 0
        while not stop.is_set():
            n += 1
            frames = 10 + (n + k) % 10

            def gen(frames: int = frames) -> Iterator[Any]:
                for j in range(frames):
                    if stop.is_set():
                        return
                    f = pose_pb2.Frame(frame_id=j, image=images[j % len(images)], use_boxes=j % 3 == 0)
                    if j % 3 == 0:
                        f.boxes.add(x=10, y=10, w=150, h=250)
                    if j == 0:
                        f.options.detect_every = 3
                        f.options.pose.flip = False
                        f.options.smoothing = True
                    yield f

            try:
                for a in pose.StreamEstimate(gen(), timeout=120):
                    count("frame_" + pose_pb2.FrameOutcome.Name(a.outcome))
                count("stream_OK")
            except grpc.RpcError as err:
                count("stream_" + err.code().name)  # type: ignore[attr-defined]
        ch.close()

    def guarded(fn: Callable[[int], None], k: int) -> Callable[[], None]:
        def run() -> None:
            while not stop.is_set():
                try:
                    fn(k)
                except Exception as exc:  # a lost request: no answer at all
                    count(f"LOST_{type(exc).__name__}")
                    time.sleep(0.1)

        return run

    threads = [threading.Thread(target=guarded(rest_loop, k), daemon=True) for k in range(rest_workers)]
    threads += [threading.Thread(target=guarded(stream_loop, k), daemon=True) for k in range(stream_workers)]
    samples: list[dict[str, Any]] = []
    t0 = time.monotonic()
    for t in threads:
        t.start()
    mc = httpx.Client()
    next_log = t0
    while (now := time.monotonic()) - t0 < duration_s:
        s: dict[str, Any] = {"t": round(now - t0, 2), **proc_sample(pid)}
        g = gpu_bytes(http, mc)
        if g is not None:
            s["gpu_bytes"] = g
        samples.append(s)
        if now >= next_log:
            log(
                f"[soak] t={s['t']:.0f}s rss={s['rss_kb'] / 1024:.1f} MiB fds={s['fds']} threads={s['threads']} {dict(counts)}"
            )
            next_log = now + max(10.0, duration_s / 20)
        time.sleep(sample_s)
    stop.set()
    for t in threads:
        t.join(130)
    mc.close()
    time.sleep(1.0)
    final = proc_sample(pid)

    n = len(samples)
    w0 = int(n * warmup_frac)
    win = max(1, n // 10)
    base = samples[w0 : w0 + win]
    end = samples[-win:]

    def med(rows: list[dict[str, Any]], key: str) -> float:
        return float(statistics.median(r[key] for r in rows))

    out: dict[str, Any] = {
        "duration_s": duration_s,
        "samples": n,
        "warmup_s": round(samples[w0]["t"], 1) if n else 0,
        "counts": dict(sorted(counts.items())),
        "requests": sum(v for k, v in counts.items() if k.startswith("rest_")),
        "frames": sum(v for k, v in counts.items() if k.startswith("frame_")),
        "streams": sum(v for k, v in counts.items() if k.startswith("stream_")),
        "lost": sum(v for k, v in counts.items() if k.startswith("LOST")),
        "server_errors": sum(
            v for k, v in counts.items() if k.startswith("rest_5") or k == "stream_INTERNAL"
        ),
        "rss_base_mib": round(med(base, "rss_kb") / 1024, 1),
        "rss_end_mib": round(med(end, "rss_kb") / 1024, 1),
        "rss_growth_pct": round(100 * (med(end, "rss_kb") / med(base, "rss_kb") - 1), 2),
        "fds_base": med(base, "fds"),
        "fds_end": med(end, "fds"),
        "fds_after_stop": final["fds"],
        "threads_base": med(base, "threads"),
        "threads_end": med(end, "threads"),
        "threads_after_stop": final["threads"],
    }
    if all("gpu_bytes" in r for r in base + end) and base:
        out["gpu_growth_pct"] = round(100 * (med(end, "gpu_bytes") / max(1.0, med(base, "gpu_bytes")) - 1), 2)
    else:
        out["gpu_growth_pct"] = None  # CPU run
    out["ok"] = bool(
        out["rss_growth_pct"] < 100 * RSS_LIMIT
        and out["fds_end"] - out["fds_base"] <= FD_SLACK
        and out["threads_end"] - out["threads_base"] <= THREAD_SLACK
        and out["lost"] == 0
        and out["server_errors"] == 0
        and (out["gpu_growth_pct"] is None or out["gpu_growth_pct"] < 100 * RSS_LIMIT)
    )
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration-s", type=float, default=600.0)
    p.add_argument("--sample-s", type=float, default=1.0)
    p.add_argument("--rest-workers", type=int, default=2)
    p.add_argument("--stream-workers", type=int, default=1)
    p.add_argument("--json", type=Path, help="write the figures here")
    args = p.parse_args(argv)
    from tests.conftest import FIXTURES, small_card_toml
    from tests.transport.conftest import start_server, stop_server

    with tempfile.TemporaryDirectory() as tmp:
        card = Path(tmp) / "darkpose_small_fixture.toml"
        card.write_text(small_card_toml(FIXTURES))
        srv = start_server(Path(tmp), card, FIXTURES / "small_model_state_dict.pt")
        try:
            out = soak(srv.http, srv.grpc, srv.proc.pid, args.duration_s, args.sample_s,
                       rest_workers=args.rest_workers, stream_workers=args.stream_workers)  # fmt: skip
        finally:
            out_rc = stop_server(srv)
        out["server_exit_code"] = out_rc
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0 if out["ok"] and out_rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
