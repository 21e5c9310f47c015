"""Core benchmark (not a test): prints ratios measured side by side in one run.

1. DARK decode per person: the vectorised decoder (NumPy kernel on CPU; the torch one, used on GPUs, shown too)
   vs a per-joint loop of the same maths, interleaved round by round, one core each.
2. Pipeline crops/s (crop + normalise + 2N flip forward + merge + decode + rescoring/NMS) vs model
   forward-only crops/s at the same batch size (HRNet-W32 256x192 by default, random weights).

Usage: python bench/bench_core.py [--card NAME] [--persons 8] [--reps 5] [--decode-persons 64] [--decode-rounds 15] [--decode-only]
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one core for NumPy's GEMMs too (before NumPy loads)

import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.reference_loop import dark_decode_loop
from service.codecs.functional import dark_decode, dark_decode_torch, unbiased_gaussian_targets
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


def bench_decode(n: int, rounds: int) -> None:
    """Vectorised decoder vs the per-joint loop, interleaved round by round (machine noise hits both)."""
    rng = np.random.default_rng(0)
    pts = torch.from_numpy(np.stack([rng.uniform(4, 44, (n, 17)), rng.uniform(4, 60, (n, 17))], -1))
    hm, _ = unbiased_gaussian_targets(pts, torch.ones(n, 17), (48, 64), 2.0)
    hm = hm + 0.05 * torch.rand_like(hm)
    hm_np = hm.numpy()
    threads, cv_threads = torch.get_num_threads(), cv2.getNumThreads()
    torch.set_num_threads(1)  # one core each: the loop is single-threaded Python + OpenCV
    cv2.setNumThreads(1)  # (OpenBLAS is pinned to one thread at the top of this file)
    vec, tvec, loop, ratios = [], [], [], []
    try:
        dark_decode(hm, 11)  # warm-up
        dark_decode_torch(hm, 11)
        for _ in range(rounds):
            v = _median_time(lambda: dark_decode(hm, 11), 5)
            t = _median_time(lambda: dark_decode_torch(hm, 11), 3)
            lp = _median_time(lambda: dark_decode_loop(hm_np, 11), 1)
            vec.append(v)
            tvec.append(t)
            loop.append(lp)
            ratios.append(lp / v)
    finally:
        torch.set_num_threads(threads)
        cv2.setNumThreads(cv_threads)
    c1, _ = dark_decode(hm, 11)
    c2, _ = dark_decode_loop(hm_np, 11)
    same = float((np.abs(c1.numpy() - c2).max(-1) == 0).mean())
    med = statistics.median
    print(
        f"DARK decode, {n} persons x 17 joints, 64x48 heatmaps, one core each, {rounds} interleaved rounds:"
    )
    print(f"  vectorised (NumPy, CPU path) : {med(vec) / n * 1e3:8.3f} ms/person")
    print(f"  vectorised (torch, GPU path) : {med(tvec) / n * 1e3:8.3f} ms/person  (run here on CPU)")
    print(f"  per-joint loop               : {med(loop) / n * 1e3:8.3f} ms/person")
    print(
        f"  speed-up                     : {med(ratios):8.1f}x   (median of per-round ratios; "
        f"range {min(ratios):.1f}-{max(ratios):.1f}x)"
    )
    print(f"  coordinates identical to the loop for {same:.1%} of joints")


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
    ap.add_argument("--decode-rounds", type=int, default=15)
    ap.add_argument("--decode-only", action="store_true", help="skip the pipeline vs forward part")
    args = ap.parse_args()
    bench_decode(args.decode_persons, args.decode_rounds)
    if not args.decode_only:
        bench_pipeline(args.card, args.persons, args.reps)


if __name__ == "__main__":
    main()
