"""Weights cache: where a card's checkpoint lives, and fetch / import / verify.

* ``fetch`` downloads the card's URL into the cache with a progress bar, resumes a partial ``.part`` file
  (HTTP Range), and checks the sha256 (full digest, or the 8-hex prefix MMPose publishes); a mismatch deletes
  the file and fails.
* ``import_weights`` copies (or links) a local file after checking that it loads strictly into the card's net.
* ``verify`` re-hashes and strictly loads a cached file.
Loading never unpickles code (``weights_only=True``).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import shutil
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from ..errors import CheckpointError, WeightsError
from ..nets import build_net, load_checkpoint_file
from .card import ModelCard


def cached_path(card: ModelCard, weights_dir: Path) -> Path:
    """Where the card's checkpoint is (or would be) cached."""
    name = card.checkpoint.filename or f"{card.name}.pth"
    return Path(weights_dir) / name


def resolve_weights(card: ModelCard, weights_dir: Path, explicit: Path | None = None) -> Path | None:
    """An explicit path if given (must exist), else the cached file if present, else ``None``."""
    if explicit is not None:
        if not Path(explicit).is_file():
            raise WeightsError(f"weights file not found: {explicit}")
        return Path(explicit)
    p = cached_path(card, weights_dir)
    return p if p.is_file() else None


def missing_weights_message(card: ModelCard, weights_dir: Path) -> str:
    """One line naming the ways to provide weights for this card, and the untrained smoke-run switch
    (every command says exactly this when it has no weights)."""
    fetch = (
        f"'posesvc weights fetch --card {card.name}' (downloads {card.checkpoint.url})"
        if card.checkpoint.url
        else f"{card.checkpoint.how_to_get or 'download the checkpoint from its publisher'}"
    )
    return (
        f"no weights for model card {card.name!r} (looked for {cached_path(card, weights_dir)}): "
        f"get them with {fetch}, 'posesvc weights import PATH --card {card.name}' (a local checkpoint), "
        "or --weights PATH (POSESVC_MODEL__WEIGHTS=PATH); or pass --allow-untrained "
        "(POSESVC_ALLOW_UNTRAINED=true) for a smoke run with random weights (results say trained=false)"
    )


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def hash_matches(digest: str, expected: str) -> bool:
    """Full sha256 or a published prefix (at least 8 hex digits)."""
    expected = expected.lower().strip()
    return bool(expected) and len(expected) >= 8 and digest.startswith(expected)


def check_loads(card: ModelCard, path: Path) -> None:
    """Raise :class:`CheckpointError` unless ``path`` loads strictly into the card's architecture."""
    net = build_net(card.architecture, card.arch_params)
    load_checkpoint_file(net, path, card.checkpoint.format)


def mirrored_url(card: ModelCard, mirror: str | None) -> str:
    """The card's checkpoint URL, or the same file name under ``mirror`` (a base URL) when one is set."""
    url = card.checkpoint.url
    if not mirror or not url:
        return url
    name = urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1]
    return mirror.rstrip("/") + "/" + urllib.parse.quote(name)


def fetch(
    card: ModelCard,
    weights_dir: Path,
    *,
    progress: bool = True,
    timeout: float = 30.0,
    mirror: str | None = None,
) -> Path:
    """Download the card's checkpoint (from ``mirror`` when given: same file name; resumable, sha256-verified)
    and return its cached path. A truncated or corrupt download is refused (the partial file is kept to
    resume from when the connection dropped, deleted when its sha256 is wrong)."""
    url = mirrored_url(card, mirror)
    if not url:
        raise WeightsError(
            f"model card {card.name!r} has no download URL. {card.checkpoint.how_to_get or 'Import the file manually.'}"
        )
    if not card.checkpoint.sha256:
        raise WeightsError(
            f"model card {card.name!r} has a URL but no sha256; refusing to fetch unverified weights"
        )
    if urllib.parse.urlsplit(url).scheme not in ("https", "http"):
        raise WeightsError(f"model card {card.name!r}: only http(s) checkpoint URLs are fetched, got {url!r}")
    dest = cached_path(card, weights_dir)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_suffix(dest.suffix + ".part")
    start = part.stat().st_size if part.exists() else 0
    req = urllib.request.Request(url, headers={"User-Agent": "posesvc"})
    if start:
        req.add_header("Range", f"bytes={start}-")
    try:
        # scheme checked above (no file:/custom schemes); the card's URL is operator config, never client input
        with urllib.request.urlopen(req, timeout=timeout) as resp:  # nosec B310
            if start and resp.status != 206:
                start = 0  # server ignored Range: restart
            expected = resp.length  # bytes this response announces (http.client counts it down as we read)
            total = expected + start if expected is not None else None
            mode = "ab" if start else "wb"
            with (
                open(part, mode) as f,
                tqdm(
                    total=total,
                    initial=start,
                    unit="B",
                    unit_scale=True,
                    desc=dest.name,
                    disable=not progress,
                ) as bar,
            ):
                got = 0
                while block := resp.read(1 << 20):
                    f.write(block)
                    got += len(block)
                    bar.update(len(block))
            if expected is not None and got < expected:  # the server closed before the end
                raise http.client.IncompleteRead(b"", expected - got)
    except urllib.error.HTTPError as exc:
        raise WeightsError(f"download of {url} failed: HTTP {exc.code} {exc.reason}") from None
    except http.client.HTTPException as exc:  # e.g. IncompleteRead: the server closed mid-file
        raise WeightsError(
            f"download of {url} was cut short ({type(exc).__name__}); run again to resume"
        ) from None
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        raise WeightsError(
            f"cannot download {url}: {reason} (no internet? use 'posesvc weights import PATH')"
        ) from None
    digest = sha256_file(part)
    if not hash_matches(digest, card.checkpoint.sha256):
        part.unlink(missing_ok=True)
        raise WeightsError(
            f"sha256 mismatch for {url}: got {digest}, the card expects {card.checkpoint.sha256}; the file was deleted"
        )
    os.replace(part, dest)
    return dest


def import_weights(card: ModelCard, source: Path, weights_dir: Path, *, link: bool = False) -> Path:
    """Verify that ``source`` loads strictly into the card's net, then copy (or symlink) it into the cache."""
    source = Path(source)
    if not source.is_file():
        raise WeightsError(f"no such file: {source}")
    check_loads(card, source)
    if card.checkpoint.sha256 and not hash_matches(sha256_file(source), card.checkpoint.sha256):
        raise WeightsError(
            f"{source} loads, but its sha256 does not match the card's {card.checkpoint.sha256}"
        )
    dest = cached_path(card, weights_dir)
    if source.suffix == ".safetensors" and dest.suffix != ".safetensors":
        dest = dest.with_suffix(".safetensors")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if dest.exists() or dest.is_symlink():
        dest.unlink()
    if link:
        dest.symlink_to(source.resolve())
    else:
        shutil.copyfile(source, dest)
    return dest


@dataclass(frozen=True)
class VerifyReport:
    path: Path
    sha256: str
    hash_checked: bool
    loads: bool
    problem: str = ""

    @property
    def ok(self) -> bool:
        return self.loads and not self.problem


def verify(card: ModelCard, path: Path) -> VerifyReport:
    """Hash (against the card when it has one) and strictly load ``path``."""
    if not Path(path).is_file():
        return VerifyReport(Path(path), "", False, False, "file not found")
    digest = sha256_file(path)
    if card.checkpoint.sha256 and not hash_matches(digest, card.checkpoint.sha256):
        return VerifyReport(
            path, digest, True, False, f"sha256 {digest} does not match the card's {card.checkpoint.sha256}"
        )
    try:
        check_loads(card, path)
    except CheckpointError as exc:
        return VerifyReport(path, digest, bool(card.checkpoint.sha256), False, str(exc))
    return VerifyReport(path, digest, bool(card.checkpoint.sha256), True)
