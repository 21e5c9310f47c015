"""``posesvc keys hash|new``: API key digests for ``POSESVC_API_KEY_HASHES`` (the service never sees keys)."""

from __future__ import annotations

import argparse
import json
import secrets
import sys
from typing import Any

from ..errors import InvalidInput


def register(sub: Any) -> None:
    p = sub.add_parser("keys", help="make API keys and the digests the server is configured with")
    ksub = p.add_subparsers(dest="keys_command", required=True)
    h = ksub.add_parser(
        "hash",
        help="print the SHA-256 digest of the key read from stdin (one line)",
        description="Reads one key from standard input (so it stays out of shell history and `ps`) and "
        "prints its digest, e.g.  printf %%s \"$KEY\" | posesvc keys hash",
    )
    h.set_defaults(func=cmd_hash)
    n = ksub.add_parser("new", help="generate a random key; print it and its digest")
    n.add_argument("--json", action="store_true", help="print {key, sha256} as JSON")
    n.set_defaults(func=cmd_new)


def digest(key: str) -> str:
    """What goes into ``POSESVC_API_KEY_HASHES`` for ``key``: the server's own digest."""
    from ..transport.auth import hash_key

    return hash_key(key)


def cmd_hash(_args: argparse.Namespace) -> int:
    text = sys.stdin.read()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if len(lines) != 1:
        raise InvalidInput(f"expected one key on stdin, got {len(lines)} non-empty lines")
    key = lines[0].strip()
    print(digest(key))
    return 0


def cmd_new(args: argparse.Namespace) -> int:
    key = secrets.token_urlsafe(32)
    if args.json:
        print(json.dumps({"key": key, "sha256": digest(key)}))
    else:
        print(f"key:    {key}\nsha256: {digest(key)}")
        print("give the key to the client (X-API-Key); put the sha256 in POSESVC_API_KEY_HASHES", file=sys.stderr)
    return 0
