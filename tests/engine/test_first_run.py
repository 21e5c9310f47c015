"""First start: ``posesvc serve`` downloads a missing checkpoint (sha256-checked, into the weights cache) from a
loopback HTTP server through the mirror setting, refuses a corrupt or truncated download with one line (or,
with --allow-untrained, serves untrained and says why), resumes a cut download, and with --no-download behaves
as before. Nothing leaves 127.0.0.1: the card's own URL is on an unreachable host, the mirror is loopback."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pytest

from service.pipeline.weights import mirrored_url

from ..transport.conftest import free_port

REPO = Path(__file__).resolve().parents[2]


class _Files(http.server.BaseHTTPRequestHandler):
    """Serves ``files[name]``; ``cut[name]`` = bytes to send before closing (the header says the full size)."""

    files: ClassVar[dict[str, bytes]] = {}
    cut: ClassVar[dict[str, int]] = {}
    requests: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        name = self.path.lstrip("/")
        self.requests.append(f"{name} {self.headers.get('Range', '')}".strip())
        data = self.files.get(name)
        if data is None:
            self.send_error(404)
            return
        start = 0
        rng = self.headers.get("Range", "")
        if rng.startswith("bytes="):
            start = int(rng[6:].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        n = self.cut.get(name)
        self.wfile.write(body if n is None else body[:n])
        if n is not None:
            self.wfile.flush()
            self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def mirror() -> Iterator[str]:
    _Files.files, _Files.cut, _Files.requests = {}, {}, []
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Files)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/weights/"
    srv.shutdown()


def _card(tmp: Path, small_card_path: Path, weights: Path, sha: str) -> Path:
    text = small_card_path.read_text()
    head, _, _ = text.partition("[checkpoint]")
    card = tmp / "firstrun.toml"
    card.write_text(head.replace('name = "darkpose_small_fixture"', 'name = "firstrun"') + f"""
[checkpoint]
format = "darkpose"
url = "https://weights.invalid/models/{weights.name}"
sha256 = "{sha}"
filename = "{weights.name}"
""")
    return card


def _serve(card: Path, tmp: Path, mirror: str, *extra: str, timeout: float = 120) -> tuple[int, str, dict | None]:
    port = free_port()
    env = {**os.environ, "POSESVC_DOWNLOAD": "true", "POSESVC_WEIGHTS_MIRROR": mirror,
           "POSESVC_WEIGHTS_DIR": str(tmp / "weights")}  # fmt: skip
    cmd = [sys.executable, "-m", "service.cli.main", "serve", "--card", str(card), "--no-detector", "--no-grpc",
           "--host", "127.0.0.1", "--http-port", str(port), "--backend", "torch", *extra]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    ready = None
    end = time.monotonic() + timeout
    while time.monotonic() < end and proc.poll() is None:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as r:
                ready = json.loads(r.read())
                break
        except OSError:
            time.sleep(0.3)
    if proc.poll() is None:
        proc.terminate()
    out, _ = proc.communicate(timeout=60)
    return proc.returncode, out, ready


@pytest.fixture
def payload(small_weights: Path) -> tuple[bytes, str]:
    data = small_weights.read_bytes()
    return data, hashlib.sha256(data).hexdigest()


def test_mirror_url() -> None:
    from service.pipeline.card import load_card

    card = load_card("hrnet_w32_256x192_mmpose_dark")
    assert mirrored_url(card, None) == card.checkpoint.url
    assert mirrored_url(card, "http://10.0.0.1/m/") == "http://10.0.0.1/m/hrnet_w32_coco_256x192_dark-07f147eb_20200812.pth"


def test_first_start_downloads_and_serves_trained(tmp_path, small_card_path, small_weights, mirror, payload):
    data, sha = payload
    _Files.files[f"weights/{small_weights.name}"] = data
    card = _card(tmp_path, small_card_path, small_weights, sha[:8])  # an MMPose-style published prefix
    _rc, out, ready = _serve(card, tmp_path, mirror)
    assert ready is not None and ready["trained"] is True, out
    cached = tmp_path / "weights" / small_weights.name
    assert cached.is_file() and hashlib.sha256(cached.read_bytes()).hexdigest() == sha
    assert _Files.requests == [f"weights/{small_weights.name}"]
    # the next start finds the file and downloads nothing
    _, out, ready = _serve(card, tmp_path, mirror)
    assert ready is not None and ready["trained"] is True and len(_Files.requests) == 1, out


def test_corrupt_download_is_refused(tmp_path, small_card_path, small_weights, mirror, payload):
    data, sha = payload
    _Files.files[f"weights/{small_weights.name}"] = data[:-10] + b"0123456789"  # same size, other bytes
    card = _card(tmp_path, small_card_path, small_weights, sha)
    rc, out, ready = _serve(card, tmp_path, mirror)
    assert rc == 2 and ready is None
    line = [x for x in out.splitlines() if "error:" in x]
    assert len(line) == 1 and "sha256 mismatch" in line[0] and "posesvc weights import" in line[0], out
    assert not (tmp_path / "weights" / small_weights.name).exists()
    assert not list((tmp_path / "weights").glob("*.part"))  # deleted, not kept to resume
    # smoke mode: serves untrained and says why
    rc, out, ready = _serve(card, tmp_path, mirror, "--allow-untrained")
    assert ready is not None and ready["trained"] is False and "sha256 mismatch" in out


def test_truncated_download_is_refused_then_resumed(tmp_path, small_card_path, small_weights, mirror, payload):
    data, sha = payload
    name = f"weights/{small_weights.name}"
    _Files.files[name], _Files.cut[name] = data, 2 * len(data) // 3  # past half: the remaining count is smaller
    card = _card(tmp_path, small_card_path, small_weights, sha)
    rc, out, ready = _serve(card, tmp_path, mirror)
    assert rc == 2 and ready is None and "cut short" in out, out
    part = tmp_path / "weights" / (small_weights.name + ".part")
    assert part.is_file() and part.stat().st_size == 2 * len(data) // 3
    del _Files.cut[name]
    rc, out, ready = _serve(card, tmp_path, mirror)
    assert ready is not None and ready["trained"] is True, out
    assert _Files.requests[-1] == f"{name} bytes={2 * len(data) // 3}-"  # resumed where it stopped


def test_no_download_behaves_as_before(tmp_path, small_card_path, small_weights, mirror, payload):
    data, sha = payload
    _Files.files[f"weights/{small_weights.name}"] = data
    card = _card(tmp_path, small_card_path, small_weights, sha)
    rc, out, ready = _serve(card, tmp_path, mirror, "--no-download")
    assert rc == 2 and ready is None and _Files.requests == []
    assert "posesvc weights fetch --card firstrun" in out
