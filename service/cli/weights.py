"""``posesvc weights list|fetch|import|verify``: the weights cache."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from ..errors import WeightsError


def register(sub: Any) -> None:
    p = sub.add_parser("weights", help="manage the weights cache")
    wsub = p.add_subparsers(dest="weights_command", required=True)
    ls = wsub.add_parser("list", help="cards, their checkpoints and whether they are cached")
    ls.set_defaults(func=cmd_list)
    f = wsub.add_parser(
        "fetch",
        help="download a card's checkpoint (resumable, sha256-verified) or the person detector's weights",
        description="The only command that downloads anything. --card: a pose checkpoint from the card's URL; "
        "--detector NAME: Ultralytics release weights (e.g. yolov8n.pt) into the same cache.",
    )
    what = f.add_mutually_exclusive_group(required=True)
    what.add_argument("--card")
    what.add_argument("--detector", metavar="NAME", help="Ultralytics detector weights, e.g. yolov8n.pt")
    f.add_argument("--no-progress", action="store_true")
    f.set_defaults(func=cmd_fetch)
    i = wsub.add_parser(
        "import", help="copy/link a local checkpoint into the cache after a strict load check"
    )
    i.add_argument("path", type=Path)
    i.add_argument("--card", required=True)
    i.add_argument("--link", action="store_true", help="symlink instead of copying")
    i.set_defaults(func=cmd_import)
    v = wsub.add_parser("verify", help="re-hash and strictly load a cached (or given) checkpoint")
    v.add_argument("--card", required=True)
    v.add_argument("path", type=Path, nargs="?")
    v.set_defaults(func=cmd_verify)
    for sp in (ls, f, i, v):
        sp.add_argument("--weights-dir", type=Path, help="cache directory (default: POSESVC_WEIGHTS_DIR)")


def _dir(args: argparse.Namespace) -> Path:
    from ..settings import Settings

    return Path(args.weights_dir) if args.weights_dir else Settings().weights_dir


def cmd_list(args: argparse.Namespace) -> int:
    from ..pipeline import weights as W
    from ..pipeline.card import list_cards, load_card

    d = _dir(args)
    print(f"weights cache: {d}")
    for name in list_cards():
        card = load_card(name)
        path = W.cached_path(card, d)
        state = "cached" if path.is_file() else ("fetchable" if card.checkpoint.url else "import manually")
        ap = f"AP {card.published_ap}" if card.published_ap is not None else ""
        print(f"  {name:34s} {state:16s} {card.checkpoint.format:9s} {ap:9s} {path.name}")
    return 0


def cmd_fetch(args: argparse.Namespace) -> int:
    from ..pipeline import weights as W
    from ..pipeline.card import load_card

    if args.detector:
        from ..pipeline.detector import fetch_detector

        path = fetch_detector(args.detector, _dir(args))
    else:
        path = W.fetch(load_card(args.card), _dir(args), progress=not args.no_progress)
    print(f"fetched {path}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from ..pipeline import weights as W
    from ..pipeline.card import load_card

    card = load_card(args.card)
    path = W.import_weights(card, args.path, _dir(args), link=args.link)
    print(f"imported {args.path} → {path} (loads strictly into {card.architecture})")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from ..pipeline import weights as W
    from ..pipeline.card import load_card

    card = load_card(args.card)
    path = args.path or W.cached_path(card, _dir(args))
    rep = W.verify(card, path)
    if not rep.ok:
        raise WeightsError(f"{path}: {rep.problem}")
    print(
        f"ok {path} sha256={rep.sha256}" + (" (matches card)" if rep.hash_checked else " (card has no hash)")
    )
    return 0
