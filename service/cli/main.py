"""``posesvc`` entry point: one sub-command per module, each registering its own arguments."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import PoseServiceError
from . import bench, predict, serve, study, video, weights
from . import eval as eval_cmd

COMMANDS = [predict, serve, study, video, weights, eval_cmd, bench]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="posesvc", description="Top-down human pose estimation (HRNet + DARK)."
    )
    parser.add_argument("--version", action="version", version=f"posesvc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for mod in COMMANDS:
        mod.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        rc: int = args.func(args)
        return rc
    except PoseServiceError as exc:
        print(f"posesvc {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
