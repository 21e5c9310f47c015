"""Scale benchmark (not a test): the same ``posesvc annotate`` job embedded, on local Ray with 1 actor and with
2 actors, in one run; prints items/s and the ratios.

The job: the first 64 images of ``../shared/data/coco_mini_val`` (COCO val2017 photos) with the persons' boxes
from the annotation file (no detector), HRNet-W32 256x192 untrained (speed does not depend on the weights),
flip test, the default backend. Each variant writes to a fresh folder; outputs are compared (they must be
identical). Ray's start-up (workers, actor construction, model load) is inside the timing, as a user sees it.

Usage: python bench/bench_annotate.py [--images 64] [--card hrnet_w32_256x192_darkpose] [--batch-images 8]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
MINI = REPO.parent / "shared" / "data" / "coco_mini_val"


def _subset(n: int, folder: Path) -> Path:
    data = json.loads((MINI / "person_keypoints_val2017_mini.json").read_text())
    images = sorted(data["images"], key=lambda im: im["id"])[:n]
    ids = {im["id"] for im in images}
    data = {**data, "images": images, "annotations": [a for a in data["annotations"] if a["image_id"] in ids]}
    path = folder / "subset.json"
    path.write_text(json.dumps(data))
    return path


def _run(args: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "service.cli.main", "annotate", *args], cwd=REPO, env=env, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--card", default="hrnet_w32_256x192_darkpose")
    ap.add_argument("--batch-images", type=int, default=8)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="posesvc-bench-annotate-"))
    ann = _subset(args.images, tmp)
    env = {**os.environ, "POSESVC_WEIGHTS_DIR": str(tmp / "weights")}
    base = ["--ann", str(ann), "--images", str(MINI / "images"), "--gt-boxes", "--card", args.card,
            "--allow-untrained", "--no-progress", "--batch-images", str(args.batch_images)]  # fmt: skip
    _run([*base, "--out", str(tmp / "warm")], env)  # export the network once (cached for every variant)
    variants = {"embedded": [], "ray, 1 actor": ["--ray", "--actors", "1"], "ray, 2 actors": ["--ray", "--actors", "2"]}
    secs, outputs = {}, {}
    for name, extra in variants.items():
        out = tmp / name.replace(" ", "_").replace(",", "")
        secs[name] = _run([*base, "--out", str(out), *extra], env)
        outputs[name] = (out / "annotations.jsonl").read_bytes()
    persons = sum(len(json.loads(line)["persons"]) for line in outputs["embedded"].splitlines())
    print(f"{args.images} images, {persons} persons, card {args.card}, {os.cpu_count()} CPUs; wall time includes "
          f"process and Ray start-up")  # fmt: skip
    for name, s in secs.items():
        print(f"  {name:14s} {s:6.1f} s  {args.images / s:5.2f} items/s  {persons / s:5.2f} persons/s")
    same = all(o == outputs["embedded"] for o in outputs.values())
    print(f"outputs identical: {same}")
    print(f"ray 1 actor / embedded: {secs['embedded'] / secs['ray, 1 actor']:.2f}x; "
          f"ray 2 actors / ray 1 actor: {secs['ray, 1 actor'] / secs['ray, 2 actors']:.2f}x")  # fmt: skip


if __name__ == "__main__":
    main()
