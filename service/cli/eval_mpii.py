"""``posesvc eval --mpii``: the official MPII test path and PCKh table (and the other single-person metrics).

Examples::

    posesvc eval --mpii annot/valid.json --mpii-gt annot/gt_valid.mat --images images/ \\
        --card hrnet_w32_256x256_mpii_darkpose                       # run the model, print the PCKh table
    posesvc eval --mpii-gt annot/gt_valid.mat --preds pred.mat        # score the official pred.mat (1-based)
    posesvc eval --mpii annot/valid.json --images images/ --metrics pck,pcp,auc,epe --card ...

The crops are taken at every record's annotated centre and scale (``TEST.USE_GT_BBOX true``), in this process.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from ..errors import InvalidInput
from .common import build_estimator, default_output_dir, load_model_card, settings_from_args


def _metric_names(args: argparse.Namespace) -> list[str]:
    names = [m.strip() for m in (args.metrics or "").split(",") if m.strip()]
    return [m for m in names if m != "pckh"]


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from ..evaluation import keypoint_metrics as km
    from ..evaluation.mpii import (
        format_pckh,
        load_mpii_gt,
        load_mpii_preds,
        load_mpii_records,
        pckh,
        predict_records,
        write_mpii_preds,
    )
    from ..zoo.keypoints import MPII16

    if args.url:
        raise InvalidInput("MPII evaluation runs in-process (it crops at the annotations' centres and scales)")
    for f in (args.mpii, args.mpii_gt, args.preds):
        if f is not None and not f.is_file():
            raise InvalidInput(f"no such file: {f}")
    metrics = _metric_names(args)
    report: dict[str, Any] = {}
    records = load_mpii_records(args.mpii) if args.mpii is not None else None
    if args.preds is not None:
        preds = load_mpii_preds(args.preds)
        report["preds"] = str(args.preds)
    else:
        if records is None:
            raise InvalidInput("give --mpii ANNOTATIONS.json (with --images) to run a model, or --preds pred.mat")
        if args.images is None or not args.images.is_dir():
            raise InvalidInput("--images DIR is required (and must exist) to run a model on MPII records")
        if args.limit is not None:
            records = type(records)(
                records.images[: args.limit], records.center[: args.limit], records.scale[: args.limit],
                records.joints[: args.limit], records.joints_vis[: args.limit],
            )  # fmt: skip
        s = settings_from_args(args)
        card = load_model_card(s)
        if card.kind != "topdown":
            raise InvalidInput(f"MPII evaluation crops at the annotated centres: {card.name} is a bottom-up model")
        estimator = build_estimator(s, card)
        preds = predict_records(
            estimator, records, args.images, flip=not args.no_flip, batch_images=args.batch_images,
            progress=not args.no_progress,
        )  # fmt: skip
        out = write_mpii_preds(args.out or default_output_dir("eval") / "pred.mat", preds)
        print(f"wrote {out} (official pred.mat: 1-based)", file=sys.stderr)
        report.update(card=card.name, trained=estimator.trained, flip=not args.no_flip, pred_file=str(out))
    lines: list[str] = []
    ks = None
    if args.mpii_gt is not None:
        gt = load_mpii_gt(args.mpii_gt)
        if len(preds) != gt.num_samples:
            raise InvalidInput(f"{len(preds)} predictions for {gt.num_samples} ground-truth samples")
        table = pckh(preds, gt)
        report.update(table.to_dict())
        lines.append(format_pckh(table, report.get("card", "posesvc")))
        if metrics:
            vis = (1 - np.asarray(gt.jnt_missing)).T
            ks = km.make_keypoint_set(preds, np.transpose(gt.pos_gt_src, (2, 0, 1)) - 1.0, vis, MPII16)
    elif records is not None and metrics:
        if len(preds) != len(records):
            raise InvalidInput(f"{len(preds)} predictions for {len(records)} annotation records")
        ks = km.make_keypoint_set(preds, records.joints, records.joints_vis, MPII16)
    elif metrics:
        raise InvalidInput("--metrics needs the ground truth: --mpii-gt GT.mat or --mpii ANNOTATIONS.json")
    else:
        raise InvalidInput("give --mpii-gt GT.mat for the PCKh table, or --metrics with --mpii")
    if ks is not None:
        values = km.compute(ks, metrics)
        report["metrics"] = values
        lines.append(km.format_metrics(values))
    if args.json:
        json.dump(report, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print("\n".join(lines))
        print(f"({len(preds)} persons)")
    return 0
