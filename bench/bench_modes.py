"""Top-down vs bottom-up cost per image as the number of persons grows (not a test): one run on this machine.

Images: a 640x480 canvas with N = 1, 2, 4, 8, 16, 32 persons pasted from real COCO val2017 person crops
(``../shared/data/coco_mini_val``, scaled to a grid cell), so the person count is known exactly.

* top-down, boxes given: HRNet-W32 256x192 (flip test) on the pasted boxes, the default backend;
* top-down with the detector: the same plus one YOLOv8n person-detector call on the image (an untrained
  ``yolov8n.yaml``: the same compute as the trained one; its boxes are not used, the pasted ones are);
* bottom-up: DEKR-W32 (test size 512, flip test, the official decode), whatever N.

Untrained networks (speed does not depend on the weights). Prints ms per image for each N, the crossover
(the smallest N where top-down costs more than bottom-up), and writes the plot ``docs/img/modes.png``.

Usage: python bench/bench_modes.py [--reps 2] [--out docs/img/modes.png]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.pipeline.bottomup import BottomUpEstimator
from service.pipeline.card import load_card
from service.pipeline.detector import DetectorConfig, YoloPersonDetector
from service.pipeline.estimator import PoseEstimator
from service.pipeline.pipeline import PosePipeline
from service.schemas import PoseOptions

REPO = Path(__file__).resolve().parents[1]
MINI = REPO.parent / "shared" / "data" / "coco_mini_val"
COUNTS = (1, 2, 4, 8, 16, 32)


def person_crops(n: int) -> list[np.ndarray]:
    """``n`` RGB person crops (the largest annotated persons of the mini val set, with a margin)."""
    data = json.loads((MINI / "person_keypoints_val2017_mini.json").read_text())
    files = {im["id"]: im["file_name"] for im in data["images"]}
    anns = sorted((a for a in data["annotations"] if a["num_keypoints"] > 8 and not a["iscrowd"]),
                  key=lambda a: -a["area"])[:n]  # fmt: skip
    crops = []
    for a in anns:
        img = cv2.imread(str(MINI / "images" / files[a["image_id"]]))[..., ::-1]
        x, y, w, h = (int(v) for v in a["bbox"])
        crops.append(np.ascontiguousarray(img[max(0, y): y + h, max(0, x): x + w]))
    return crops


def scene(crops: list[np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray]:
    """A 640x480 canvas with ``n`` persons on a grid; their boxes ``(n, 5)``."""
    canvas = np.full((480, 640, 3), 114, np.uint8)
    cols = int(np.ceil(np.sqrt(n * 640 / 480)))
    rows = int(np.ceil(n / cols))
    cw, ch = 640 // cols, 480 // rows
    boxes = []
    for i in range(n):
        r, c = divmod(i, cols)
        crop = crops[i % len(crops)]
        s = min((cw - 4) / crop.shape[1], (ch - 4) / crop.shape[0])
        w, h = max(2, int(crop.shape[1] * s)), max(2, int(crop.shape[0] * s))
        x0, y0 = c * cw + (cw - w) // 2, r * ch + (ch - h) // 2
        canvas[y0 : y0 + h, x0 : x0 + w] = cv2.resize(crop, (w, h))
        boxes.append([x0, y0, w, h, 1.0])
    return canvas, np.array(boxes, dtype=np.float64)


def median_ms(fn, reps: int) -> float:  # type: ignore[no-untyped-def]
    fn()  # warm-up for this shape
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return 1000 * statistics.median(ts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--out", type=Path, default=REPO / "docs" / "img" / "modes.png")
    args = ap.parse_args()
    td_card, bu_card = load_card("hrnet_w32_256x192_darkpose"), load_card("dekr_w32_512_coco")
    td = PosePipeline(PoseEstimator.from_card(td_card, None, allow_untrained=True, backend="auto"))
    bu = PosePipeline(BottomUpEstimator.from_card(bu_card, None, allow_untrained=True))
    det = YoloPersonDetector(DetectorConfig(weights="yolov8n.yaml", device="cpu"))
    opts = PoseOptions(flip=True)
    crops = person_crops(32)
    rows = []
    print(f"top-down {td_card.name} via {td.estimator.backend.name} (flip); bottom-up {bu_card.name} via torch (flip); "  # type: ignore[attr-defined]
          f"detector yolov8n (untrained, same compute); {args.reps} reps, median; ms per image", flush=True)  # fmt: skip
    print(f"{'persons':>8} {'td boxes':>10} {'td+det':>10} {'bottom-up':>10}")
    for n in COUNTS:
        image, boxes = scene(crops, n)
        t_td = median_ms(lambda image=image, boxes=boxes: td.run([image], [boxes], opts), args.reps)
        t_det = median_ms(lambda image=image: det.detect([image]), args.reps)
        t_bu = median_ms(lambda image=image: bu.run([image], [None], opts), args.reps)
        rows.append((n, t_td, t_td + t_det, t_bu))
        print(f"{n:>8} {t_td:>10.0f} {t_td + t_det:>10.0f} {t_bu:>10.0f}", flush=True)
    cross_boxes = next((n for n, a, _, c in rows if a > c), None)
    cross_det = next((n for n, _, b, c in rows if b > c), None)
    print(f"crossover (top-down slower than bottom-up): with boxes given at {cross_boxes} persons, "
          f"with the detector at {cross_det} persons (None: not within {COUNTS[-1]})")  # fmt: skip
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    ns = [r[0] for r in rows]
    ax.plot(ns, [r[1] / 1000 for r in rows], "o-", label="top-down W32 256x192, boxes given")
    ax.plot(ns, [r[2] / 1000 for r in rows], "s-", label="top-down + YOLOv8n detector")
    ax.plot(ns, [r[3] / 1000 for r in rows], "^-", label="bottom-up DEKR-W32 512")
    ax.set_xscale("log", base=2)
    ax.set_xticks(ns, [str(n) for n in ns])
    ax.set_xlabel("persons per image")
    ax.set_ylabel("seconds per image (flip test, this CPU)")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out, dpi=110)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
