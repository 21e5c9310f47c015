"""``posesvc annotate INPUT... --out DIR``: poses for a backlog of images and videos, as a resumable batch job.

Examples::

    posesvc annotate photos/ 'clips/*.mp4' --out runs/job1              # folders, globs, files
    posesvc annotate --ann person_keypoints_val2017.json --images val2017/ --det dets.json --out runs/val
    posesvc annotate photos/ --out runs/job1 --render                  # also draw every image

Writes ``DIR/annotations.jsonl`` (one record per image or video frame, track ids for video; the format is in
``service/jobs/journal.py``), ``DIR/summary.json`` and, for a COCO annotation file, ``DIR/results.json``
(COCO keypoint results). Rerunning with the same ``--out`` skips the items already done. A bad item (an
unreadable image, a broken video) is recorded with its error and counted; it never stops the job.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import InvalidInput
from .common import add_model_args, build_detector, build_estimator, load_model_card, settings_from_args


def register(sub: Any) -> None:
    p = sub.add_parser(
        "annotate",
        help="poses for many images/videos (files, folders, globs, a COCO annotation file); resumable",
        description="Run the pose pipeline over images and videos as a batch job: JSON lines out (per image "
        "or video frame, with track ids for video), COCO results for an annotation file, optional drawings. "
        "Resumable with the same --out; bad items are recorded, never fatal.",
    )
    p.add_argument("inputs", nargs="*", help="image/video files, folders (recursive) or glob patterns")
    p.add_argument("--out", type=Path, required=True, help="output folder (rerun with the same one to resume)")
    p.add_argument("--ann", type=Path, help="a COCO annotation file: annotate its images (with --images)")
    p.add_argument("--images", type=Path, help="image folder of --ann (file_name relative to it)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--det", type=Path, help="with --ann: person detections JSON (COCO results format)")
    src.add_argument("--gt-boxes", action="store_true", help="with --ann: the annotated person boxes")
    p.add_argument("--det-min-score", type=float, default=0.0, help="keep detections with score >= this")
    add_model_args(p)
    p.add_argument("--detector-weights", help="detector weights (.pt, name, or .yaml untrained)")
    p.add_argument("--batch-images", type=int, default=8, help="images (or video frames) per pipeline call")
    p.add_argument("--no-flip", action="store_true", help="disable the flip test")
    p.add_argument("--render", action="store_true", help="also write each image with its poses to DIR/rendered/")
    p.add_argument("--max-frames", type=int, help="read at most this many frames of each video")
    p.add_argument("--tracker", choices=["oks", "iou"], default="oks", help="video track matching")
    p.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                   help="run on Ray: a local Ray on this machine, or the cluster at ADDRESS")  # fmt: skip
    p.add_argument("--actors", type=int, default=1, help="with --ray: pipeline actors (default 1)")
    p.add_argument("--actor-gpus", type=float, default=0.0, help="with --ray: GPUs per actor (e.g. 1)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def _items(args: argparse.Namespace) -> list[Any]:
    from ..jobs.items import coco_items, discover

    items = discover(args.inputs) if args.inputs else []
    if args.ann is not None:
        from ..evaluation.coco import detection_boxes, ground_truth_boxes, load_coco

        if args.images is None or not args.images.is_dir():
            raise InvalidInput("--ann needs --images DIR (the folder its file_name entries are in)")
        if not args.ann.is_file():
            raise InvalidInput(f"no such file: {args.ann}")
        ids = sorted(int(i) for i in load_coco(args.ann).getImgIds())
        boxes = None
        if args.det is not None:
            if not args.det.is_file():
                raise InvalidInput(f"no such file: {args.det}")
            boxes = detection_boxes(args.det, ids, args.det_min_score)
        elif args.gt_boxes:
            boxes = ground_truth_boxes(load_coco(args.ann), ids)
        items += coco_items(args.ann, args.images, boxes, ids)
    elif args.det is not None or args.gt_boxes:
        raise InvalidInput("--det and --gt-boxes apply to --ann")
    if not items:
        raise InvalidInput("nothing to annotate: give image/video files, folders, globs, or --ann with --images")
    return items


def pin_backend(s: Any) -> Any:
    """A batch job's output must not depend on a start-up timing race: ``auto`` (which keeps the faster of ONNX
    Runtime and OpenVINO as measured when a server starts) becomes the first installed of ONNX Runtime,
    OpenVINO, torch, the same in this process, in every Ray actor and in every rerun."""
    from ..backends.select import installed

    card_backend = load_model_card(s).backend
    if (s.model.backend or card_backend) != "auto":
        return s
    pinned = next(b for b in ("onnxruntime", "openvino", "torch") if installed(b))
    return s.model_copy(update={"model": s.model.model_copy(update={"backend": pinned})})


def run(args: argparse.Namespace) -> int:
    from ..jobs.annotate import JobOptions, run_embedded
    from ..jobs.journal import Journal, read_records
    from ..schemas import PoseOptions

    if args.batch_images < 1:
        raise InvalidInput("--batch-images must be at least 1")
    items = _items(args)
    s = pin_backend(settings_from_args(args))
    if args.detector_weights:
        s = s.model_copy(update={"detector": s.detector.model_copy(update={"weights": args.detector_weights})})
    opts = JobOptions(PoseOptions(flip=not args.no_flip), args.batch_images,
                      args.out / "rendered" if args.render else None, args.max_frames, args.tracker)  # fmt: skip
    journal = Journal(args.out / "annotations.jsonl")
    try:
        if args.ray:
            from ..jobs.ray_runner import run_on_ray

            summary = run_on_ray(s, items, journal, opts, address=args.ray, actors=args.actors,
                                 gpus_per_actor=args.actor_gpus, progress=not args.no_progress)  # fmt: skip
        else:
            from ..pipeline.pipeline import PosePipeline

            card = load_model_card(s)
            needs_detector = any(it.boxes is None for it in items if it.key not in journal.done)
            pipeline = PosePipeline(build_estimator(s, card), build_detector(s) if needs_detector else None)
            summary = run_embedded(pipeline, items, journal, opts, progress=not args.no_progress)
    finally:
        journal.close()
    report = summary.to_dict()
    if args.ann is not None:
        entries = []
        for rec in read_records(journal.path):
            if rec.get("kind") == "image" and rec.get("image_id") is not None:
                for p in rec["persons"]:
                    entries.append({"image_id": rec["image_id"], "category_id": 1, "score": p["score"],
                                    "keypoints": [v for k in p["keypoints"] for v in k]})  # fmt: skip
        (args.out / "results.json").write_text(json.dumps(entries))
        report["results_file"] = str(args.out / "results.json")
    (args.out / "summary.json").write_text(json.dumps(report, indent=2))
    print(f"{summary.done} item(s) done now, {summary.skipped} already done, {summary.errors} bad; "
          f"{summary.persons} persons in {summary.seconds:.1f} s; {args.out / 'annotations.jsonl'}")  # fmt: skip
    for line in summary.bad:
        print(f"  bad item: {line}", file=sys.stderr)
    return 0
