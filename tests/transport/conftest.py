"""A real ``posesvc serve`` process on 127.0.0.1 (random free ports) with the small fixture model."""

from __future__ import annotations

import io
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
LIMITS = {
    "POSESVC_MAX_IMAGE_BYTES": str(2 * 1024 * 1024),
    "POSESVC_MAX_BOXES": "64",
    "POSESVC_GRPC_MAX_MESSAGE_BYTES": str(3 * 1024 * 1024),
    "POSESVC_ENGINE__QUEUE_SIZE": "4",
    "POSESVC_ENGINE__MAX_BATCH_IMAGES": "2",
    "POSESVC_ENGINE__MAX_BATCH_CROPS": "8",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    http: str
    grpc: str
    proc: subprocess.Popen[bytes]
    log: Path


def start_server(tmp: Path, card: Path | None, weights: Path | None, extra_env: dict[str, str] | None = None,
                 extra_args: list[str] | None = None, timeout_s: float = 180.0,
                 tls_ca: Path | None = None, default_detector: bool = False) -> Server:  # fmt: skip
    """``tls_ca``: the server serves HTTPS (POSESVC_TLS_* in ``extra_env``); trust this CA (PEM) when polling.
    ``card=None``: the default card; ``default_detector``: the detector settings' default (as ``make run``),
    else the untrained ``yolov8n.yaml``."""
    hp, gp = free_port(), free_port()
    env = {**os.environ, **LIMITS, "POSESVC_WEIGHTS_DIR": str(tmp / "weights"), **(extra_env or {})}
    log = tmp / f"server-{hp}.log"
    cmd = [sys.executable, "-m", "service.cli.main", "serve", *(["--card", str(card)] if card is not None else []),
           *(["--weights", str(weights)] if weights is not None else []), "--host", "127.0.0.1", "--http-port", str(hp), "--grpc-port", str(gp),
           *([] if default_detector else ["--detector-weights", "yolov8n.yaml"]), "--allow-untrained", *(extra_args or [])]  # fmt: skip
    with open(log, "wb") as out:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"{'https' if tls_ca else 'http'}://127.0.0.1:{hp}"
    verify: bool | ssl.SSLContext = ssl.create_default_context(cafile=str(tls_ca)) if tls_ca else True
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url + "/readyz", timeout=2, verify=verify).status_code == 200:
                return Server(url, f"127.0.0.1:{gp}", proc, log)
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"server not ready after {timeout_s}s:\n{log.read_text()[-3000:]}")


def stop_server(server: Server, timeout_s: float = 30.0) -> int:
    server.proc.send_signal(signal.SIGTERM)
    try:
        return server.proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        server.proc.kill()
        return -9


@pytest.fixture(scope="session")
def server(tmp_path_factory, small_card_path, small_weights):
    srv = start_server(tmp_path_factory.mktemp("srv"), small_card_path, small_weights)
    yield srv
    stop_server(srv)


@pytest.fixture(scope="session")
def synthetic_png(crop_cases) -> bytes:
    """The parity fixtures' synthetic image, losslessly encoded (PNG)."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(crop_cases["image_bgr"][..., ::-1])).save(buf, format="PNG")
    return buf.getvalue()


@pytest.fixture(scope="session")
def coco_jpeg(data_dir) -> bytes:
    return (data_dir / "coco_samples" / "000000196141.jpg").read_bytes()
