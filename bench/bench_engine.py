"""Engine throughput vs the pipeline called directly on the same batches (not a test).

N concurrent in-process asyncio clients submit real COCO images (encoded bytes, decoded by the engine) with
their ground-truth person boxes (``bbox``, ``iscrowd=0``). The engine's batch compositions are recorded; then
the same batches (same images, same boxes, pre-decoded) go through ``PosePipeline.run`` directly on one
thread. Persons/s counts person crops estimated (GT boxes). Prints both rates, their ratio and the engine's
latency p50/p99 (s from submit to result, queueing included).

    python bench/bench_engine.py [--requests 16] [--clients 8] [--rounds 2] [--card NAME|PATH]
                                 [--weights PATH]

Data: ``$POSESVC_SHARED_DATA/coco_mini_val`` (default ``../shared/data`` next to the repo).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from service.engine import EngineConfig, PoseEngine  # noqa: E402
from service.engine.factory import SettingsPipelineFactory  # noqa: E402
from service.engine.worker import warm_up  # noqa: E402
from service.pipeline.card import load_card  # noqa: E402
from service.pipeline.image import decode_image  # noqa: E402
from service.schemas import PoseRequest  # noqa: E402
from service.settings import Settings  # noqa: E402

DATA = Path(os.environ.get("POSESVC_SHARED_DATA", REPO.parent / "shared" / "data")) / "coco_mini_val"


def load_requests(n: int, max_boxes: int) -> list[tuple[str, bytes, np.ndarray]]:
    """``(file_name, bytes, boxes (M, 4))`` for up to ``n`` images with at least one non-crowd person."""
    ann = json.loads((DATA / "person_keypoints_val2017_mini.json").read_text())
    boxes: dict[int, list[list[float]]] = {}
    for a in ann["annotations"]:
        if not a.get("iscrowd", 0) and a["bbox"][2] > 1 and a["bbox"][3] > 1:
            boxes.setdefault(a["image_id"], []).append(a["bbox"])
    out = []
    for im in sorted(ann["images"], key=lambda im: im["id"]):
        if im["id"] in boxes:
            data = (DATA / "images" / im["file_name"]).read_bytes()
            out.append((im["file_name"], data, np.array(boxes[im["id"]][:max_boxes], dtype=np.float64)))
    if not out:
        raise SystemExit(f"no images with persons under {DATA}")
    return [out[i % len(out)] for i in range(n)]  # repeat the set if more requests than images


async def run_engine(
    engine: PoseEngine, reqs: list[tuple[str, bytes, np.ndarray]], clients: int
) -> tuple[float, list[float]]:
    engine.start()
    await engine.wait_ready(600)
    todo = iter(enumerate(reqs))
    latencies: list[float] = []

    async def client() -> None:
        for i, (_, data, boxes) in todo:
            t0 = time.perf_counter()
            await engine.submit(PoseRequest(data, boxes, request_id=str(i)))
            latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    wall = time.perf_counter() - t0
    await engine.shutdown(10)
    return wall, latencies


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--card", default="hrnet_w32_256x192_darkpose")
    ap.add_argument("--weights", type=Path, help="checkpoint (default: random weights)")
    ap.add_argument("--requests", type=int, default=16)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--max-batch-images", type=int, default=8)
    ap.add_argument("--max-batch-crops", type=int, default=32)
    ap.add_argument("--max-delay-ms", type=float, default=0.0)
    ap.add_argument("--max-boxes", type=int, default=2, help="GT boxes used per image (bounds the run time)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--rounds", type=int, default=2, help="engine pass then direct pass, repeated")
    args = ap.parse_args()

    torch.manual_seed(0)
    base = Settings(device=args.device)  # type: ignore[call-arg]
    s = base.model_copy(
        update={
            "model": base.model.model_copy(update={"card": args.card, "weights": args.weights}),
            "engine": base.engine.model_copy(
                update={
                    "max_batch_images": args.max_batch_images,
                    "max_batch_crops": args.max_batch_crops,
                    "max_delay_ms": args.max_delay_ms,
                    "queue_size": max(64, args.clients),
                    "default_deadline_s": 600.0,
                }
            ),
        }
    )
    card = load_card(args.card)
    factory = SettingsPipelineFactory(s, card, allow_untrained=args.weights is None, detector=False)
    reqs = load_requests(args.requests, args.max_boxes)
    persons = sum(len(b) for _, _, b in reqs)

    batches: list[list[int]] = []

    def record(_index: int, batch: Any) -> None:  # batch tap (the engine's fault-hook slot; never raises)
        batches.append([int(it.request.request_id) for it in batch])

    pipe = factory(s.devices()[0])
    warm_up(pipe, s.engine.max_batch_crops)
    t0 = time.perf_counter()
    decoded = [decode_image(data) for _, data, _ in reqs]
    decode_s = time.perf_counter() - t0

    print(f"card {card.name} ({'random' if args.weights is None else args.weights}), device {args.device}, "
          f"torch threads {torch.get_num_threads()}")  # fmt: skip
    print(f"{len(reqs)} requests, {persons} persons, {args.clients} clients, "
          f"max_batch_images {args.max_batch_images}, max_batch_crops {args.max_batch_crops}, "
          f"max_delay_ms {args.max_delay_ms}; decoding all images in sequence {decode_s:.2f} s")  # fmt: skip
    total_e = total_d = 0.0
    latencies: list[float] = []
    ratios: list[float] = []
    for rnd in range(1, args.rounds + 1):
        batches.clear()
        engine = PoseEngine(EngineConfig.from_settings(s), factory, s.devices(), fault_hook=record)
        wall_e, lat = asyncio.run(run_engine(engine, reqs, args.clients))
        stats = engine.stats()
        t0 = time.perf_counter()
        for b in batches:
            with torch.inference_mode():
                pipe.run([decoded[i] for i in b], [reqs[i][2] for i in b])
        wall_d = time.perf_counter() - t0
        total_e, total_d = total_e + wall_e, total_d + wall_d
        latencies += lat
        ratios.append(wall_d / wall_e)
        sizes = [len(b) for b in batches]
        print(f"round {rnd}: {len(batches)} batches (images per batch: mean {statistics.mean(sizes):.2f}, "
              f"max {max(sizes)}, pose forwards {stats.pose_forwards}); "
              f"engine {persons / wall_e:.3f} persons/s ({wall_e:.1f} s, decoding included), "
              f"direct {persons / wall_d:.3f} persons/s ({wall_d:.1f} s, same batches), "
              f"ratio {wall_d / wall_e:.3f}")  # fmt: skip
    n = persons * args.rounds
    q = statistics.quantiles(latencies, n=100, method="inclusive")
    print(f"engine : {n / total_e:8.3f} persons/s  ({total_e:.1f} s)")
    print(f"direct : {n / total_d:8.3f} persons/s  ({total_d:.1f} s)")
    print(f"ratio  : {total_d / total_e:8.3f}  (engine / direct, all rounds)")
    print(f"ratio  : {statistics.median(ratios):8.3f}  (median of per-round ratios; robust to other load)")
    print(f"latency: p50 {q[49]:.2f} s, p99 {q[98]:.2f} s  (submit → result, queueing included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
