"""API keys, shared by the HTTP and gRPC transports.

Keys are configured as SHA-256 hex digests (``POSESVC_API_KEY_HASHES``), never in clear; a presented key
(``X-API-Key: <key>`` or ``Authorization: Bearer <key>`` over HTTP, the same names as gRPC metadata) is hashed
and compared with every configured digest using :func:`hmac.compare_digest` (constant time). Several digests
may be active at once (rotation).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping


def hash_key(key: str) -> str:
    """The digest to put in configuration for ``key``."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class KeyChecker:
    """Constant-time check of a presented key against configured SHA-256 digests."""

    def __init__(self, digests: Iterable[str]) -> None:
        self._digests = [bytes.fromhex(d.strip().lower()) for d in digests if d.strip()]

    @property
    def enabled(self) -> bool:
        return bool(self._digests)

    def check(self, presented: str | None) -> bool:
        if not self._digests:
            return True
        if not presented:
            return False
        got = hashlib.sha256(presented.encode("utf-8")).digest()
        ok = False
        for d in self._digests:  # no early exit: time does not depend on which key matched
            ok |= hmac.compare_digest(got, d)
        return ok


def presented_key(headers: Mapping[str, str]) -> str | None:
    """The key in lower-cased headers or metadata: ``x-api-key``, else ``authorization: Bearer <key>``."""
    key = headers.get("x-api-key")
    if key:
        return key
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return None


def key_identity(key: str) -> str:
    """A short, non-reversible name for a key (per-client limits, logs): never the key itself."""
    return "key:" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]
