"""``posesvc serve`` as a subprocess: refusal without weights, and a smoke start → ready → SIGTERM."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def _env(weights_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSESVC_")}
    env.update(
        PYTHONPATH=str(REPO),
        POSESVC_WEIGHTS_DIR=str(weights_dir),
        POSESVC_DEVICE="cpu",
        POSESVC_ENGINE__MAX_BATCH_CROPS="2",
        POSESVC_DETECTOR__IMGSZ="320",
    )
    return env


def _serve(args: list[str], weights_dir: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "service.cli.main", "serve", *args],
        cwd=weights_dir,  # no stray .env
        env=_env(weights_dir),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _get(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_serve_without_weights_exits_with_the_three_ways(tmp_path: Path, small_card_path: Path) -> None:
    proc = _serve(["--card", str(small_card_path), "--http-port", str(_free_port())], tmp_path)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert "darkpose_small_fixture" in out
    assert "posesvc weights import" in out and "POSESVC_MODEL__WEIGHTS" in out and "--allow-untrained" in out
    assert "Traceback" not in out


def test_serve_allow_untrained_becomes_ready_and_stops_on_sigterm(
    tmp_path: Path, small_card_path: Path, small_weights: Path
) -> None:
    port = _free_port()
    args = ["--card", str(small_card_path), "--weights", str(small_weights), "--allow-untrained"]
    proc = _serve([*args, "--host", "127.0.0.1", "--http-port", str(port)], tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        body: dict[str, object] = {}
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()[0]
            try:
                status, body = _get(f"{base}/readyz")
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.2)
                continue
            if status == 200:
                break
            assert status == 503 and body["ready"] is False
            time.sleep(0.2)
        else:
            raise AssertionError(f"/readyz never became 200: {body}")
        assert body["ready"] is True and body["model"] == "darkpose_small_fixture"
        assert body["trained"] is True  # pose weights given; the detector fell back to untrained
        assert body["detector"] == {"name": "yolov8n", "trained": False}
        assert body["devices"] == ["cpu"]
        assert _get(f"{base}/healthz") == (200, {"status": "alive"})
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out
        assert "Traceback" not in out and "UNTRAINED detector" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_serve_untrained_readyz_says_trained_false(tmp_path: Path, small_card_path: Path) -> None:
    port = _free_port()
    args = ["--card", str(small_card_path), "--allow-untrained", "--no-detector", "--http-port", str(port)]
    proc = _serve(args, tmp_path)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()[0]
            try:
                status, body = _get(f"http://127.0.0.1:{port}/readyz")
            except (urllib.error.URLError, ConnectionError):
                status, body = 0, {}
            if status == 200:
                break
            time.sleep(0.2)
        else:
            raise AssertionError("/readyz never became 200")
        assert body["trained"] is False and body["detector"] is None
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def test_serve_with_a_backend_that_cannot_run_stops_with_one_line(
    tmp_path: Path, small_card_path: Path, small_weights: Path
) -> None:
    """A backend asked for by name that cannot run here (TensorRT without CUDA) stops the start before the
    port is bound, with one line naming the model, the backend and what to do."""
    args = ["--card", str(small_card_path), "--weights", str(small_weights), "--backend", "tensorrt",
            "--device", "cpu", "--no-detector", "--http-port", str(_free_port())]  # fmt: skip
    proc = _serve(args, tmp_path)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 2, out
    errors = [line for line in out.splitlines() if "error:" in line]
    assert errors == ["posesvc serve: error: model darkpose_small_fixture: backend tensorrt needs a CUDA device"], out
    assert "Traceback" not in out
