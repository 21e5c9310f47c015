"""``posesvc study dark``: the DARK encoding/decoding study on real COCO keypoints (no network).

Writes ``results.{csv,json,md}`` and ``dark_study.png`` to ``--out``; see ``docs/DARK_STUDY.md``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from ..errors import InvalidInput
from .common import default_output_dir

#: Relative to the repository root, like the other shared data (``../shared/data``).
DEFAULT_ANN = (
    Path(__file__).resolve().parents[2].parent / "shared" / "data" / "person_keypoints_val2017_subset538.json"
)
QUICK_IMAGES = 40


def register(sub: Any) -> None:
    p = sub.add_parser("study", help="offline studies on real annotations (no network)")
    ssub = p.add_subparsers(dest="study_command", required=True)
    d = ssub.add_parser(
        "dark",
        help="quantised vs unbiased targets × argmax/quarter/DARK decoding: COCO AP and pixel error",
        description="Synthesise heatmaps from COCO ground truth (GT boxes, DarkPose geometry), optionally "
        "degrade them, decode them three ways, and score with pycocotools COCOeval('keypoints').",
    )
    d.add_argument(
        "--ann", type=Path, default=DEFAULT_ANN, help="COCO person keypoints JSON (default: %(default)s)"
    )
    d.add_argument(
        "--out", type=Path, help="output dir (default: a new folder under ~/.cache/posesvc/runs)"
    )
    d.add_argument(
        "--resolutions", default="64x48,32x24,96x72", help="heatmap sizes HxW (default: %(default)s)"
    )
    d.add_argument(
        "--noise", default="0.02,0.05,0.1",
        help="Gaussian noise std levels relative to the peak, comma-separated; 'none' for no noise "
        "(default: %(default)s)",
    )  # fmt: skip
    d.add_argument("--no-second-peak", action="store_true", help="skip the displaced-second-peak degradation")
    d.add_argument("--seed", type=int, default=0, help="base seed of the noise/distractor draws (default: 0)")
    d.add_argument(
        "--quick", action="store_true", help=f"only the first {QUICK_IMAGES} images (plumbing check)"
    )
    d.add_argument(
        "--max-images", type=int, help="only the first N images (by id) that hold a keypoint person"
    )
    d.add_argument("--workers", type=int, default=1, help="worker processes (default: 1)")
    d.add_argument("--threads", type=int, default=1, help="torch threads per worker (default: 1)")
    d.set_defaults(func=run_dark)


def _floats(text: str) -> tuple[float, ...]:
    if text.strip().lower() in ("", "none", "0"):
        return ()
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise InvalidInput(f"--noise must be comma-separated numbers, got {text!r}") from None


def run_dark(args: argparse.Namespace) -> int:
    from ..study.dark import ResolutionSpec, StudyConfig, default_degradations, run_study, write_outputs

    if not args.ann.is_file():
        raise InvalidInput(f"annotation file not found: {args.ann} (pass --ann)")
    try:
        resolutions = tuple(ResolutionSpec.parse(s) for s in args.resolutions.split(","))
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    max_images = args.max_images if args.max_images is not None else (QUICK_IMAGES if args.quick else None)
    config = StudyConfig(
        ann_path=args.ann,
        resolutions=resolutions,
        degradations=default_degradations(_floats(args.noise), second_peak=not args.no_second_peak),
        seed=args.seed,
        max_images=max_images,
        workers=args.workers,
        threads=args.threads,
    )
    t0 = time.perf_counter()
    result = run_study(config, log=lambda msg: print(msg, file=sys.stderr, flush=True))
    paths = write_outputs(result, args.out or default_output_dir("study-dark"))
    print(paths["md"].read_text(), end="")
    print(
        f"study took {time.perf_counter() - t0:.1f}s; wrote {', '.join(str(p) for p in paths.values())}",
        file=sys.stderr,
    )
    return 0
