"""Core benchmark (not a test): prints ratios measured side by side in one run.

1. DARK decode per person: vectorised torch decoder vs a per-joint loop of the same maths.
2. Pipeline crops/s (crop + normalise + 2N flip forward + merge + decode + rescoring/NMS) vs model
   forward-only crops/s at the same batch size (HRNet-W32 256x192 by default, random weights).

Usage: python bench/bench_core.py [--card NAME] [--persons 8] [--reps 5] [--decode-persons 64]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.reference_loop import dark_decode_loop
from service.codecs.functional import dark_decode, unbiased_gaussian_targets
from service.pipeline.card import load_card
from service.pipeline.crop import normalise
from service.pipeline.estimator import EstimatorConfig, PoseEstimator
from service.schemas import PoseOptions


def _median_time(fn, reps: int) -> float:
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def bench_decode(n: int, reps: int) -> None:
    rng = np.random.default_rng(0)
    pts = torch.from_numpy(np.stack([rng.uniform(4, 44, (n, 17)), rng.uniform(4, 60, (n, 17))], -1))
    hm, _ = unbiased_gaussian_targets(pts, torch.ones(n, 17), (48, 64), 2.0)
    hm = hm + 0.05 * torch.rand_like(hm)
    hm_np = hm.numpy()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one core each: the loop is single-threaded Python + OpenCV
    try:
        dark_decode(hm, 11)  # warm-up
        vec = _median_time(lambda: dark_decode(hm, 11), reps)
        loop = _median_time(lambda: dark_decode_loop(hm_np, 11), max(1, reps // 2))
    finally:
        torch.set_num_threads(threads)
    c1, _ = dark_decode(hm, 11)
    c2, _ = dark_decode_loop(hm_np, 11)
    agree = float(np.abs(c1.numpy() - c2).max())
    print(f"DARK decode, {n} persons x 17 joints, 64x48 heatmaps, one thread each (median of {reps}):")
    print(f"  vectorised torch : {vec / n * 1e3:8.3f} ms/person")
    print(f"  per-joint loop   : {loop / n * 1e3:8.3f} ms/person")
    print(f"  speed-up         : {loop / vec:8.1f}x   (max coord difference {agree:.2e} px)")


def bench_pipeline(card_name: str, persons: int, reps: int) -> None:
    card = load_card(card_name)
    est = PoseEstimator.from_card(
        card, None, allow_untrained=True, config=EstimatorConfig(max_batch_crops=persons)
    )
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    boxes = np.array([[20 + 60 * i, 40 + 10 * i, 120, 300, 0.9] for i in range(persons)], dtype=np.float64)
    prep = est.prepare(img, boxes)
    x = normalise(torch.from_numpy(prep.crops), card.mean, card.std)
    x2 = torch.cat([x, x.flip(-1)])
    opts = PoseOptions(flip=True)

    def pipeline() -> None:
        est.estimate([img], [boxes], opts)

    def forward() -> None:
        est.forward(x2)

    pipeline()
    forward()
    tp, tf = [], []
    for _ in range(reps):  # interleaved, so machine noise hits both
        tf.append(_median_time(forward, 1))
        tp.append(_median_time(pipeline, 1))
    fwd, pipe = statistics.median(tf), statistics.median(tp)
    print(
        f"\nPipeline vs forward-only, {card.name}, {persons} crops per batch, flip test (forward batch {2 * persons}),"
    )
    print(
        f"  torch {torch.__version__}, {torch.get_num_threads()} threads, median of {reps} interleaved runs:"
    )
    print(f"  forward only : {persons / fwd:7.2f} crops/s  ({fwd * 1e3:.0f} ms per batch)")
    print(f"  full pipeline: {persons / pipe:7.2f} crops/s  ({pipe * 1e3:.0f} ms per batch)")
    print(f"  ratio        : {fwd / pipe:7.3f}  (pipeline / forward-only throughput)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--card", default="hrnet_w32_256x192_darkpose")
    ap.add_argument("--persons", type=int, default=8)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--decode-persons", type=int, default=64)
    args = ap.parse_args()
    bench_decode(args.decode_persons, args.reps)
    bench_pipeline(args.card, args.persons, args.reps)


if __name__ == "__main__":
    main()
