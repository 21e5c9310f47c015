"""``posesvc eval``: COCO keypoint AP of the pipeline (in-process or against a server), or of a results file.

Examples::

    posesvc eval --preds preds.json --ann person_keypoints_val2017.json        # score a file, no model
    posesvc eval --ann person_keypoints_val2017.json --images val2017/ \\
        --det COCO_val2017_detections_AP_H_56_person.json --card hrnet_w32_256x192_darkpose
    posesvc eval --ann ... --images ... --gt-boxes --url grpc://127.0.0.1:50051
    posesvc eval --ann ... --images ... --gt-boxes --metrics pck,pdj,pcp,auc,epe --card ...
    posesvc eval --mpii annot/valid.json --mpii-gt annot/gt_valid.mat --images images/ --card ...  (MPII PCKh)

See ``docs/EVAL.md``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput
from .common import (
    add_model_args,
    build_detector,
    build_estimator,
    default_output_dir,
    load_model_card,
    settings_from_args,
)

if TYPE_CHECKING:
    from ..evaluation.coco import EvalReport


def register(sub: Any) -> None:
    p = sub.add_parser(
        "eval",
        help="COCO keypoint AP (pycocotools) or the official MPII PCKh table, of the pipeline or of a results file",
        description="COCO keypoint AP with pycocotools COCOeval: either score --preds, or run the pipeline "
        "on --images with boxes from --det FILE, --gt-boxes or --detector, in-process or against --url. "
        "MPII (--mpii / --mpii-gt): the official lib/dataset/mpii.py test path and PCKh table. --metrics adds "
        "PCK@0.2 (torso), PDJ, strict PCP, AUC and EPE.",
    )
    p.add_argument("--ann", type=Path, help="COCO keypoint annotation file (ground truth)")
    p.add_argument("--mpii", type=Path, help="MPII annotations (annot/valid.json format, 1-based): evaluate on MPII")
    p.add_argument("--mpii-gt", type=Path, help="MPII ground truth (gt_valid.mat format) for the official PCKh table")
    p.add_argument(
        "--metrics",
        help="also compute these single-person metrics, comma-separated: pck (PCK@0.2 of the torso), pdj, pcp "
        "(strict PCP@0.5), auc, epe; COCO: needs --gt-boxes, in-process (every box kept: no OKS-NMS)",
    )
    p.add_argument(
        "--preds",
        type=Path,
        help="score this results file, no model run: COCO results JSON, or with --mpii-gt the official pred.mat",
    )
    p.add_argument("--images", type=Path, help="image folder (file_name of the annotation file)")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--det", type=Path, help="person detection results JSON (e.g. the AP_H 56 file)")
    src.add_argument("--gt-boxes", action="store_true", help="use the ground-truth person boxes")
    src.add_argument("--detector", action="store_true", help="use the built-in person detector")
    p.add_argument("--det-min-score", type=float, default=0.0, help="keep detections with score >= this")
    add_model_args(p)
    p.add_argument("--url", help="evaluate a running server: http://host:port (REST) or grpc://host:port")
    p.add_argument("--api-key", help="API key for --url")
    p.add_argument("--model", help="with --url: the served model to evaluate (default: the server's first)")
    p.add_argument("--concurrency", type=int, default=2, help="requests in flight with --url (default: 2)")
    p.add_argument(
        "--timeout",
        type=float,
        default=600.0,
        help="seconds one request may take with --url, queueing on the server included; also sent as the "
        "request's deadline (default: 600)",
    )
    p.add_argument("--no-flip", action="store_true", help="disable the flip test")
    p.add_argument(
        "--decoder",
        choices=["dark", "standard"],
        help="heatmap decoder (default: the card's; in-process only)",
    )
    p.add_argument("--batch-images", type=int, default=8, help="images per pipeline call")
    p.add_argument("--limit", type=int, help="evaluate only the first N images (sorted ids)")
    p.add_argument("--image-ids", help="comma-separated image ids to evaluate")
    p.add_argument(
        "--out",
        type=Path,
        help="results JSON to write (default: keypoints_results.json in a new folder under ~/.cache/posesvc/runs)",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def _image_ids(args: argparse.Namespace, coco: Any) -> list[int]:
    from ..evaluation.coco import select_image_ids

    ids = [int(v) for v in args.image_ids.split(",") if v.strip()] if args.image_ids else None
    try:
        return select_image_ids(coco, ids, args.limit)
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None


def _print(report: EvalReport, as_json: bool) -> None:
    from ..evaluation.coco import format_stats

    if as_json:
        json.dump(report.to_dict(), sys.stdout, indent=2)
        sys.stdout.write("\n")
        return
    print(format_stats(report.stats))
    if "metrics" in report.extra:
        from ..evaluation.keypoint_metrics import format_metrics

        print(format_metrics(report.extra["metrics"]))
        print("(every ground-truth box kept: AP above is without OKS-NMS)")
    print(f"({len(report.image_ids)} images, {report.num_results} results)")


def _single_person_metrics(coco: Any, ids: list[int], results: Any, names: list[str], card: Any) -> dict[str, Any]:
    from ..evaluation import keypoint_metrics as km
    from ..evaluation.coco import ground_truth_keypoints, paired_keypoints

    try:
        pred, gt, vis = paired_keypoints(results, ground_truth_keypoints(coco, ids))
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    return km.compute(km.make_keypoint_set(pred, gt, vis, card.keypoints), names)


def run(args: argparse.Namespace) -> int:
    from ..evaluation.coco import (
        EvalReport,
        client_runner,
        detection_boxes,
        evaluate_results,
        ground_truth_boxes,
        inprocess_runner,
        load_coco,
        predict_dataset,
        results_entries,
        write_results,
    )
    from ..schemas import PoseOptions

    if args.mpii is not None or args.mpii_gt is not None:
        from . import eval_mpii

        return eval_mpii.run(args)
    if args.ann is None:
        raise InvalidInput("--ann ANNOTATIONS.json is required (or --mpii / --mpii-gt for MPII)")
    if args.timeout <= 0:
        raise InvalidInput("--timeout must be a positive number of seconds")
    metric_names = [m.strip() for m in (args.metrics or "").split(",") if m.strip()]
    if metric_names and (args.preds is not None or not args.gt_boxes or args.url):
        raise InvalidInput("--metrics on COCO pairs each ground-truth person with its box: use --gt-boxes, in-process")
    for f in (args.ann, args.preds, args.det):
        if f is not None and not f.is_file():
            raise InvalidInput(f"no such file: {f}")
    coco = load_coco(args.ann)
    ids = _image_ids(args, coco)
    if args.preds is not None:
        stats = evaluate_results(coco, args.preds, ids if (args.limit or args.image_ids) else None)
        entries = json.loads(args.preds.read_text())
        _print(EvalReport(stats, ids, len(entries), args.preds), args.json)
        return 0
    if args.images is None or not args.images.is_dir():
        raise InvalidInput("--images DIR is required (and must exist) unless --preds is given")
    bottomup = False
    if not args.url:
        bottomup = load_model_card(settings_from_args(args)).kind == "bottomup"
    if bottomup and (args.det or args.gt_boxes):
        raise InvalidInput("a bottom-up model finds the persons itself: drop --det / --gt-boxes")
    if not (args.det or args.gt_boxes or args.detector or bottomup or args.url):
        raise InvalidInput("choose the person boxes: --det FILE, --gt-boxes or --detector")
    if args.det is not None:
        boxes = detection_boxes(args.det, ids, args.det_min_score)
        source = f"detections:{args.det.name}"
    elif args.gt_boxes:
        boxes = ground_truth_boxes(coco, ids)
        source = "ground_truth"
    else:
        boxes = None
        source = "bottom-up" if bottomup else "detector" if args.detector else "server"
    # the single-person metrics pair every ground-truth box with its prediction: keep every box
    options = PoseOptions(flip=not args.no_flip, oks_nms=not metric_names)
    client = None
    if args.url:
        from ..client import connect

        if args.decoder:
            raise InvalidInput("--decoder applies in-process only; a server decodes with its model card")
        client = connect(args.url, api_key=args.api_key, timeout_s=args.timeout)
        runner = client_runner(client, options, args.concurrency, timeout_s=args.timeout, model=args.model)
        model: dict[str, Any] = {"url": args.url}
    else:
        s = settings_from_args(args)
        card = load_model_card(s)
        if args.decoder:  # the card's codec, overridden for this run
            card = dataclasses.replace(card, codec=args.decoder)
        estimator = build_estimator(s, card)
        detector = build_detector(s) if boxes is None and card.kind == "topdown" else None
        from ..pipeline.pipeline import PosePipeline

        runner = inprocess_runner(PosePipeline(estimator, detector), options, s.max_image_pixels)
        model = {"card": card.name, "trained": estimator.trained, "device": str(estimator.device),
                 "decoder": estimator.codec.name if card.kind == "topdown" else "dekr",
                 "precision": estimator.config.precision}  # fmt: skip
    try:
        results, seconds = predict_dataset(
            runner, coco, args.images, ids, boxes, args.batch_images, progress=not args.no_progress
        )
    finally:
        if client is not None:
            client.close()
    entries = results_entries(results)
    out = write_results(args.out or default_output_dir("eval") / "keypoints_results.json", entries)
    stats = evaluate_results(coco, entries, ids)
    report = EvalReport(stats, ids, len(entries), out, seconds, len(entries) / max(seconds, 1e-9))
    report.extra = {"boxes": source, "flip": not args.no_flip, "oks_nms": not metric_names, **model}
    if metric_names:
        report.extra["metrics"] = _single_person_metrics(coco, ids, results, metric_names, card)
    stats_file = out.with_suffix(".stats.json")
    stats_file.write_text(json.dumps(report.to_dict(), indent=2))
    print(f"wrote {out} and {stats_file} ({seconds:.1f} s)", file=sys.stderr)
    _print(report, args.json)
    return 0
