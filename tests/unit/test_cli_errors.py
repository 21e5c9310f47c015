"""The newcomer's mistakes: each is one line on stderr and a non-zero exit code, never a traceback; one
untrained policy (the same flag and message) for every command; ``--help`` without torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from tests.transport.conftest import free_port

IMG = "coco_samples/000000196141.jpg"


def posesvc(args: list[str], tmp: Path, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "POSESVC_WEIGHTS_DIR": str(tmp / "empty-weights")}
    env.pop("POSESVC_ALLOW_UNTRAINED", None)
    env.pop("POSESVC_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "service.cli.main", *args], cwd=tmp, env={**env, **(extra_env or {})},
                          capture_output=True, text=True, timeout=180)  # fmt: skip


def one_line_error(r: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert r.returncode != 0, r.stdout
    assert "Traceback" not in r.stderr, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, r.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def tiny_video(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("video") / "in.mp4"
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 10.0, (64, 48))
    for i in range(3):
        vw.write(np.full((48, 64, 3), 40 * i, np.uint8))
    vw.release()
    return path


def test_missing_image_and_boxes_file(tmp_path, data_dir):
    one_line_error(posesvc(["predict", str(tmp_path / "nope.jpg"), "--allow-untrained"], tmp_path),
                   "predict: error:", "nope.jpg")  # fmt: skip
    one_line_error(posesvc(["predict", str(data_dir / IMG), "--boxes", "@missing.json"], tmp_path),
                   "--boxes", "missing.json")  # fmt: skip


def test_unreachable_and_schemeless_urls(tmp_path, data_dir, tiny_video):
    img = str(data_dir / IMG)
    dead = free_port()  # nothing listens there
    one_line_error(posesvc(["predict", img, "--url", f"http://127.0.0.1:{dead}"], tmp_path), "cannot reach")
    one_line_error(posesvc(["predict", img, "--url", f"grpc://127.0.0.1:{dead}"], tmp_path), "UNAVAILABLE")
    one_line_error(posesvc(["predict", img, "--url", f"127.0.0.1:{dead}"], tmp_path), "unsupported URL")
    line = one_line_error(posesvc(["video", str(tiny_video), "--out", str(tmp_path / "o.mp4"), "--no-progress",
                                   "--url", f"grpc://127.0.0.1:{dead}"], tmp_path))  # fmt: skip
    assert "video: error:" in line and "UNAVAILABLE" in line
    one_line_error(posesvc(["eval", "--ann", str(data_dir / "coco_samples" / "test_coco.json"), "--images",
                            str(data_dir / "coco_samples"), "--gt-boxes", "--no-progress",
                            "--url", f"http://127.0.0.1:{dead}"], tmp_path), "cannot reach")  # fmt: skip


def test_broken_pipe_is_quiet(tmp_path):
    proc = subprocess.Popen([sys.executable, "-m", "service.cli.main", "keys", "new"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before anything was written, as with `| head -0`
    err = proc.stderr.read().decode()
    assert proc.wait(60) == 141
    assert "Traceback" not in err and "BrokenPipeError" not in err


def test_one_untrained_policy(tmp_path, data_dir, small_card_path, tiny_video):
    """Without weights every model command refuses with the same message naming the same flag; with the
    flag (or the setting) it runs."""
    card = ["--card", str(small_card_path)]
    samples = data_dir / "coco_samples"
    runs = {
        "predict": ["predict", str(data_dir / IMG), "--boxes", "[[100, 50, 200, 300]]", *card],
        "eval": ["eval", "--ann", str(samples / "test_coco.json"), "--images", str(samples), "--gt-boxes",
                 "--no-progress", "--limit", "1", "--out", str(tmp_path / "r.json"), *card],
        "video": ["video", str(tiny_video), "--out", str(tmp_path / "o.mp4"), "--no-progress", *card],
        "bench": ["bench", "--micro", "--reps", "1", "--persons", "1", "--decode-persons", "2",
                  "--no-loop-decode", "--out", str(tmp_path / "b"), *card],
    }  # fmt: skip
    messages = set()
    for name, argv in runs.items():
        line = one_line_error(posesvc(argv, tmp_path), f"posesvc {name}: error: no weights for model card")
        messages.add(line.split(": error: ", 1)[1])
        assert "--allow-untrained" in line and "POSESVC_ALLOW_UNTRAINED" in line
    assert len(messages) == 1  # the same words from every command
    ok = posesvc([*runs["predict"], "--allow-untrained"], tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["model"]["trained"] is False
    env_ok = posesvc(runs["predict"], tmp_path, {"POSESVC_ALLOW_UNTRAINED": "true"})
    assert env_ok.returncode == 0, env_ok.stderr
    # seeded: a second process draws the same untrained network, so the same keypoints
    assert json.loads(env_ok.stdout)["persons"] == json.loads(ok.stdout)["persons"]


def test_help_does_not_import_torch(tmp_path):
    code = (
        "import sys, contextlib, io\n"
        "from service.cli.main import main\n"
        "for argv in (['--help'], ['serve', '--help'], ['predict', '--help'], ['eval', '--help']):\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        try:\n"
        "            main(argv)\n"
        "        except SystemExit:\n"
        "            pass\n"
        "heavy = [m for m in ('torch', 'cv2', 'ultralytics', 'grpc', 'uvicorn') if m in sys.modules]\n"
        "print(heavy)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"
