"""``posesvc models [--json]``: the model cards, with their size and whether their weights are here."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    p = sub.add_parser(
        "models",
        help="list the model cards: architecture, dataset, input size, joints, parameters, GFLOPs, AP, weights",
        description="Builds each card's network (random weights, no download) to count its parameters and "
        "multiply-adds (GFLOPs, one crop at the card's input size); --no-size skips that.",
    )
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    p.add_argument("--no-size", action="store_true", help="skip building the networks (no params/GFLOPs)")
    p.add_argument("--models-dir", type=Path, help="card folder (default: the repo's models/)")
    p.add_argument("--weights-dir", type=Path, help="weights cache (default: POSESVC_WEIGHTS_DIR)")
    p.set_defaults(func=run)


def describe(card: Any, weights_dir: Path, size: bool) -> dict[str, Any]:
    """One card as a JSON-ready dict."""
    from ..pipeline.weights import cached_path

    cached = cached_path(card, weights_dir).is_file()
    row: dict[str, Any] = {
        "name": card.name,
        "architecture": card.architecture,
        "dataset": card.keypoints.dataset or card.keypoints.name,
        "keypoint_schema": card.keypoints.name,
        "input_size": list(card.input_size),
        "joints": card.num_joints,
        "codec": card.codec,
        "backend": card.backend,
        "published_ap": card.published_ap,
        "published_metrics": dict(card.published_metrics),
        "weights": "cached" if cached else ("fetchable" if card.checkpoint.url else "import manually"),
    }
    if size:
        from ..nets import build_net
        from ..nets.profile import count_macs, count_params

        net = build_net(card.architecture, card.arch_params, seed_key=card.name)
        row["params"] = count_params(net)
        row["gflops"] = round(count_macs(net, card.input_size) / 1e9, 2)
    return row


def run(args: argparse.Namespace) -> int:
    from ..pipeline.card import list_cards, load_card
    from ..settings import Settings

    weights_dir = args.weights_dir or Settings().weights_dir
    rows = [
        describe(load_card(name, args.models_dir), weights_dir, not args.no_size)
        for name in list_cards(args.models_dir)
    ]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'card':36} {'arch':11} {'dataset':9} {'input':8} {'K':>3} {'params':>8} {'GFLOPs':>7} {'AP/PCKh':>7}  weights")
    for r in rows:
        params = f"{r['params'] / 1e6:.1f}M" if "params" in r else "-"
        gflops = f"{r['gflops']:.1f}" if "gflops" in r else "-"
        pub = r["published_metrics"]
        value = r["published_ap"] if r["published_ap"] is not None else pub.get("mpii_val_pckh")
        ap = f"{value:.1f}" if value is not None else "-"
        size = f"{r['input_size'][1]}x{r['input_size'][0]}"  # H x W, as the papers write it
        print(f"{r['name']:36} {r['architecture']:11} {r['dataset']:9} {size:8} {r['joints']:>3} {params:>8} "
              f"{gflops:>7} {ap:>7}  {r['weights']}")  # fmt: skip
    return 0
