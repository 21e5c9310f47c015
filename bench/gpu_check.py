"""Everything a GPU machine must show, in one short run (bench/gpu_check.sh); on a machine without CUDA it runs
what it can on the CPU and says what it skipped.

1. Device crops: ``TorchCrop`` on the device against OpenCV 4's ``warpAffine`` on the 118 detection boxes of
   the zoo fixture photos (expected: bit-equal; prints the max difference).
2. Keypoints of the darkpose fixture's official e2e case (small official model, 118 real boxes, flip test)
   with torch fp16 and TensorRT (fp16) against torch fp32 on the same device: max and p99 pixel differences,
   and the max score difference.
3. Persons/s (with flip: one 2N forward) at batch 1, 8, 32, 64 for torch fp32, torch fp16, torch compiled
   (CUDA graphs, fixed buckets) and TensorRT, on HRNet-W32 256x192 (untrained weights: speed only).

Usage: python bench/gpu_check.py [--card hrnet_w32_256x192_darkpose] [--batches 1,8,32,64] [--reps 10]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.backends.select import installed
from service.pipeline.card import load_card
from service.pipeline.crop import OpenCVCrop, TorchCrop
from service.pipeline.estimator import EstimatorConfig, PoseEstimator
from service.pipeline.geometry import affine_matrices, box_to_center_scale
from service.pipeline.image import read_image_file
from service.schemas import PoseOptions

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SKIPPED: list[str] = []


def _say(msg: str) -> None:
    print(msg, flush=True)


def check_crops(device: str) -> None:
    common = np.load(SHARED / "fixtures" / "zoo" / "e2e_common.npz")
    worst, n = 0, 0
    for i, name in enumerate(common["image_files"]):
        image = read_image_file(str(SHARED / "data" / "coco_samples" / str(name)), honour_exif=False)
        sel = np.nonzero(common["image_index"] == i)[0]
        center, scale = box_to_center_scale(common["boxes_xywh"][sel], (192, 256), "darkpose")
        m = affine_matrices(center, scale, (192, 256))
        got = TorchCrop(device).warp(image, m, (192, 256)).cpu().numpy()
        ref = OpenCVCrop().warp(image, m, (192, 256))
        worst = max(worst, int(np.abs(got.astype(np.int16) - ref.astype(np.int16)).max()))
        n += len(sel)
    _say(f"[crops] {device}: {n} crops 256x192, max |device - OpenCV| = {worst} grey levels "
         f"({'bit-equal' if worst == 0 else 'DIFFERENT'})")  # fmt: skip


def _fixture_case() -> tuple[list[np.ndarray], list[np.ndarray], Path, Path]:
    fx = SHARED / "fixtures" / "darkpose"
    real = np.load(fx / "e2e_real_coco.npz")
    images = [read_image_file(str(SHARED / "data" / "coco_samples" / str(n)), honour_exif=False) for n in real["images"]]
    boxes = []
    for i in range(len(images)):
        sel = np.nonzero(real["image_index"] == i)[0]
        boxes.append(np.concatenate([real["boxes_xywh"][sel], real["box_scores"][sel, None]], axis=1))
    card = Path(tempfile.mkdtemp()) / "small.toml"
    sys.path.insert(0, str(REPO))
    from tests.conftest import small_card_toml

    card.write_text(small_card_toml(fx))
    return images, boxes, card, fx / "small_model_state_dict.pt"


def _keypoints(est: PoseEstimator, images: list[np.ndarray], boxes: list[np.ndarray]) -> np.ndarray:
    out = est.estimate(images, boxes, PoseOptions(flip=True, oks_nms=False))
    rows = []
    for res in out:
        rows += [p.keypoints for p in sorted(res.persons, key=lambda p: p.box_index)]
    return np.stack(rows)


def check_keypoints(device: str, export_dir: Path) -> None:
    if not device.startswith("cuda"):
        SKIPPED.append("fp16 / TensorRT keypoints vs fp32 (no CUDA device)")
        return
    images, boxes, card_path, weights = _fixture_case()
    card = load_card(card_path)
    ref_est = PoseEstimator.from_card(card, weights, device=device, config=EstimatorConfig(precision="fp32"))
    ref = _keypoints(ref_est, images, boxes)
    variants = {"torch fp16": {"backend": "torch", "config": EstimatorConfig(precision="fp16")}}
    if installed("tensorrt"):
        variants["tensorrt fp16"] = {"backend": "tensorrt", "config": EstimatorConfig(precision="fp16"),
                                         "export_dir": export_dir}  # fmt: skip
    else:
        SKIPPED.append("TensorRT keypoints (onnxruntime-gpu with TensorrtExecutionProvider not installed)")
    for name, kw in variants.items():
        try:
            est = PoseEstimator.from_card(card, weights, device=device, **kw)  # type: ignore[arg-type]
        except Exception as exc:
            SKIPPED.append(f"{name}: {' '.join(str(exc).split())}")
            continue
        got = _keypoints(est, images, boxes)
        d = np.linalg.norm(got[..., :2] - ref[..., :2], axis=-1).ravel()
        _say(f"[keypoints] {name} vs fp32 on {len(ref)} persons: max {d.max():.3f} px, p99 {np.percentile(d, 99):.3f} px, "
             f"max score diff {np.abs(got[..., 2] - ref[..., 2]).max():.2e}")  # fmt: skip


def bench(device: str, card_name: str, batches: list[int], reps: int, export_dir: Path) -> None:
    if not device.startswith("cuda"):
        SKIPPED.append("persons/s for torch fp32 / fp16 / compile / TensorRT at batch " + ",".join(map(str, batches))
                       + " (no CUDA device; CPU backends: python bench/bench_backends.py)")  # fmt: skip
        return
    card = load_card(card_name)
    w, h = card.input_size
    variants: dict[str, dict] = {
        "torch fp32": {"backend": "torch", "precision": "fp32"},
        "torch fp16": {"backend": "torch", "precision": "fp16"},
        "torch fp16 compiled": {"backend": "torch", "precision": "fp16", "compile": True},
    }
    if installed("tensorrt"):
        variants["tensorrt fp16"] = {"backend": "tensorrt", "precision": "fp16"}
    for name, v in variants.items():
        try:
            est = PoseEstimator.from_card(
                card, None, allow_untrained=True, device=device, backend=v["backend"], export_dir=export_dir,
                compile=v.get("compile", False),
                config=EstimatorConfig(precision=v["precision"], max_batch_crops=max(batches)),
            )  # fmt: skip
        except Exception as exc:
            SKIPPED.append(f"{name}: {' '.join(str(exc).split())}")
            continue
        row = []
        for b in batches:
            x = torch.randn(b, 3, h, w, device=device)
            for _ in range(3):
                est.heatmaps(x, flip=True)
            torch.cuda.synchronize()
            t = time.perf_counter()
            for _ in range(reps):
                est.heatmaps(x, flip=True)
            torch.cuda.synchronize()
            row.append(f"b{b}: {b * reps / (time.perf_counter() - t):8.1f}")
        _say(f"[speed] {name:20s} persons/s (flip: 2N forward)  " + "  ".join(row))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--card", default="hrnet_w32_256x192_darkpose")
    ap.add_argument("--batches", default="1,8,32,64")
    ap.add_argument("--reps", type=int, default=10)
    args = ap.parse_args()
    device = "cuda:0" if torch.cuda.is_available() else "cpu"
    _say(f"device: {torch.cuda.get_device_name(0) if device != 'cpu' else 'CPU (no CUDA device)'}; "
         f"torch {torch.__version__}")  # fmt: skip
    export_dir = Path(tempfile.mkdtemp(prefix="posesvc-gpu-check-"))
    t0 = time.perf_counter()
    check_crops(device)
    check_keypoints(device, export_dir)
    bench(device, args.card, [int(b) for b in args.batches.split(",")], args.reps, export_dir)
    for s in SKIPPED:
        _say(f"[skipped] {s}")
    _say(f"done in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
