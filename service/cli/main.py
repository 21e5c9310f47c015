"""``posesvc`` entry point: one sub-command per module, each registering its own arguments.

Command modules import nothing heavy at module level, so ``posesvc --help`` answers without torch. Errors
are one line on stderr and a non-zero exit code: 2 for a mistake of the user's or a refused request
(:class:`~service.errors.PoseServiceError`, a client error, an unreadable file), 1 for anything unexpected
(``POSESVC_DEBUG=1`` shows its traceback), 130 on Ctrl-C, 141 when stdout is closed early (``| head``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from .. import __version__
from ..errors import PoseServiceError
from . import annotate, bench, export, keys, models, predict, serve, study, video, weights
from . import eval as eval_cmd

COMMANDS = [predict, serve, models, study, video, weights, eval_cmd, bench, keys, export, annotate]

#: exit codes
EXIT_USER_ERROR = 2
EXIT_INTERNAL = 1
EXIT_INTERRUPTED = 130
EXIT_BROKEN_PIPE = 141


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="posesvc", description="Top-down human pose estimation (HRNet + DARK)."
    )
    parser.add_argument("--version", action="version", version=f"posesvc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for mod in COMMANDS:
        mod.register(sub)
    return parser


def one_line(exc: BaseException) -> str:
    """The exception's message on one line (whitespace runs, newlines included, become one space)."""
    return " ".join(str(exc).split()) or type(exc).__name__


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    prefix = f"posesvc {args.command}: error:"
    try:
        rc: int = args.func(args)
        sys.stdout.flush()  # a closed pipe shows up here, inside the handlers below
        return rc
    except BrokenPipeError:
        # the reader went away (`posesvc ... | head`): stop quietly, as coreutils do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except Exception as exc:
        if os.environ.get("POSESVC_DEBUG"):
            raise
        if _is_user_error(exc):
            print(f"{prefix} {one_line(exc)}", file=sys.stderr)
            return EXIT_USER_ERROR
        print(
            f"{prefix} unexpected {type(exc).__name__}: {one_line(exc)} (POSESVC_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


def _is_user_error(exc: Exception) -> bool:
    """Errors the user can act on: refused input, a failed request, a file or address that is not there."""
    if isinstance(exc, PoseServiceError | OSError):
        return True
    for module, name in (("service.client.base", "ClientError"), ("pydantic", "ValidationError")):
        cls = getattr(sys.modules.get(module), name, None)  # only loaded if the command used it
        if cls is not None and isinstance(exc, cls):
            return True
    return False


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
