"""Backend benchmark (not a test): every backend installed here, measured side by side in one run.

1. Pipeline throughput (crop -> normalise -> one 2N flip forward -> merge -> decode -> rescoring/NMS) of the
   same card and weights through ``torch``, ``onnxruntime`` and ``openvino`` (``tensorrt`` and torch fp16 /
   compile on a CUDA device: see bench/gpu_check.sh), rounds interleaved so machine noise hits every
   backend alike; with each backend's share of the machine's measured fp32 peak (a large matmul in
   torch and in ONNX Runtime, the faster of the two).
2. ``--contention N``: the backend serving here (``auto``) measured idle, then next to N competitor processes
   running the same forward with the same settings; prints its throughput as a share of its idle figure and
   of the fair share 1/(N+1).

Last line (CPU): ``onnxruntime/torch pipeline throughput: X.XXx``.

Usage: python bench/bench_backends.py [--card NAME] [--persons 8] [--rounds 3] [--contention N] [--seconds 20]
"""

from __future__ import annotations

import argparse
import os
import sys

# as the posesvc CLI sets them, before NumPy / torch load
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("GOMP_SPINCOUNT", "0")

import multiprocessing as mp
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.backends.select import installed
from service.nets.profile import count_macs
from service.pipeline.card import load_card
from service.pipeline.estimator import EstimatorConfig, PoseEstimator
from service.pipeline.image import read_image_file
from service.schemas import PoseOptions

REPO = Path(__file__).resolve().parents[1]
PHOTO = REPO.parent / "shared" / "data" / "coco_samples" / "000000196141.jpg"


def _image_and_boxes(persons: int) -> tuple[np.ndarray, np.ndarray]:
    if PHOTO.is_file():
        image = read_image_file(str(PHOTO), honour_exif=False)
    else:
        image = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    rng = np.random.default_rng(1)
    h, w = image.shape[:2]
    xy = rng.uniform(0, [w * 0.6, h * 0.4], (persons, 2))
    wh = rng.uniform([w * 0.15, h * 0.3], [w * 0.35, h * 0.6], (persons, 2))
    return image, np.concatenate([xy, wh, np.ones((persons, 1))], axis=1)


def _estimator(card_name: str, backend: str, export_dir: Path, persons: int) -> PoseEstimator:
    cfg = EstimatorConfig(max_batch_crops=persons)
    return PoseEstimator.from_card(load_card(card_name), None, allow_untrained=True, backend=backend,
                                   export_dir=export_dir, config=cfg)  # fmt: skip


def machine_peak_gflops() -> float:
    """fp32 GFLOP/s of a 2048x2048 matmul, the better of torch and ONNX Runtime (which beats torch here)."""
    n = 2048
    a = torch.randn(n, n)
    best = 0.0
    for _ in range(3):
        t = time.perf_counter()
        for _ in range(3):
            a @ a
        best = max(best, 3 * 2 * n**3 / (time.perf_counter() - t) / 1e9)
    if installed("onnxruntime"):
        best = max(best, _ort_matmul_gflops(n))
    return best


def _ort_matmul_gflops(n: int) -> float:
    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "mm.onnx"

        class MM(torch.nn.Module):
            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return x @ x

        torch.onnx.export(MM(), (torch.randn(n, n),), str(path), input_names=["x"], dynamo=False)
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        x = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
        sess.run(None, {"x": x})
        best = 0.0
        for _ in range(3):
            t = time.perf_counter()
            for _ in range(3):
                sess.run(None, {"x": x})
            best = max(best, 3 * 2 * n**3 / (time.perf_counter() - t) / 1e9)
        return best


def bench_pipeline(card_name: str, persons: int, rounds: int, names: list[str]) -> dict[str, float]:
    backends = [b for b in names if installed(b)]
    image, boxes = _image_and_boxes(persons)
    export_dir = Path(tempfile.mkdtemp(prefix="posesvc-bench-"))
    ests = {b: _estimator(card_name, b, export_dir, persons) for b in backends}
    card = load_card(card_name)
    gflop_per_crop = 2 * count_macs(ests["torch"].net, card.input_size) / 1e9
    opts = PoseOptions(flip=True)
    for est in ests.values():  # warm-up (first-call allocations, OpenVINO's first inference)
        est.estimate([image], [boxes], opts)
    times: dict[str, list[float]] = {b: [] for b in backends}
    for _ in range(rounds):
        for b in backends:
            time.sleep(0.3)  # let the previous backend's worker threads go idle (OpenVINO's TBB pool spins)
            t = time.perf_counter()
            ests[b].estimate([image], [boxes], opts)
            times[b].append(time.perf_counter() - t)
    peak = machine_peak_gflops()
    print(f"card {card_name}, {persons} persons per image with flip (one {2 * persons}-crop forward), "
          f"{torch.get_num_threads()} threads, {rounds} interleaved rounds; {gflop_per_crop:.1f} GFLOP per crop; "
          f"machine fp32 peak {peak:.0f} GFLOP/s (2048^2 matmul)")  # fmt: skip
    out = {}
    for b in backends:
        med = statistics.median(times[b])
        crops_s = 2 * persons / med
        out[b] = persons / med
        print(f"  {b:12s} {persons / med:6.2f} persons/s  {crops_s:6.2f} crops/s  "
              f"{crops_s * gflop_per_crop:6.1f} GFLOP/s  ({100 * crops_s * gflop_per_crop / peak:4.0f}% of peak)  "
              f"parity vs torch {ests[b].backend_max_diff:.1e}")  # fmt: skip
    return out


def _competitor(card_name: str, backend: str, persons: int, stop: float, export_dir: str) -> None:
    est = _estimator(card_name, backend, Path(export_dir), persons)
    w, h = est.card.input_size
    x = torch.randn(2 * persons, 3, h, w)
    while time.time() < stop:
        est.forward(x)


def _forward_rate(est: PoseEstimator, persons: int, seconds: float) -> float:
    w, h = est.card.input_size
    x = torch.randn(2 * persons, 3, h, w)
    est.forward(x)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        est.forward(x)
        n += 2 * persons
    return n / (time.perf_counter() - t0)


def bench_contention(card_name: str, persons: int, competitors: int, seconds: float) -> None:
    export_dir = tempfile.mkdtemp(prefix="posesvc-bench-")
    est = _estimator(card_name, "auto", Path(export_dir), persons)
    idle = _forward_rate(est, persons, seconds)
    ctx = mp.get_context("spawn")
    stop = time.time() + seconds + 60.0
    procs = [ctx.Process(target=_competitor, args=(card_name, est.backend.name, persons, stop, export_dir))
             for _ in range(competitors)]  # fmt: skip
    for p in procs:
        p.start()
    time.sleep(15.0)  # competitors load and warm up
    busy = _forward_rate(est, persons, seconds)
    for p in procs:
        p.terminate()
        p.join()
    fair = 1.0 / (competitors + 1)
    print(f"contention: {est.backend.name} with {competitors} competitor process(es) running the same forward "
          f"({est.backend.threads if hasattr(est.backend, 'threads') else '?'} threads each): idle {idle:.2f} crops/s, "
          f"busy {busy:.2f} crops/s = {busy / idle:.2f} of idle, {busy / idle / fair:.2f} of the fair share {fair:.2f}")  # type: ignore[attr-defined]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--card", default="hrnet_w32_256x192_darkpose")
    ap.add_argument("--persons", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--backends", default="torch,onnxruntime,openvino", help="comma-separated (torch first)")
    ap.add_argument("--contention", type=int, default=0, help="competitor processes (0: skip this part)")
    ap.add_argument("--seconds", type=float, default=20.0, help="measuring time per contention phase")
    args = ap.parse_args()
    rates = bench_pipeline(args.card, args.persons, args.rounds, args.backends.split(","))
    if args.contention:
        bench_contention(args.card, args.persons, args.contention, args.seconds)
    exported = {b: r for b, r in rates.items() if b in ("onnxruntime", "openvino")}
    if exported and "torch" in rates:
        best = max(exported, key=lambda b: exported[b])
        print(f"auto (the faster exported runtime on this CPU, as serve times it at start-up): {best}, "
              f"{exported[best] / rates['torch']:.2f}x torch")  # fmt: skip
    if "onnxruntime" in rates:
        print(f"onnxruntime/torch pipeline throughput: {rates['onnxruntime'] / rates['torch']:.2f}x")


if __name__ == "__main__":
    main()
