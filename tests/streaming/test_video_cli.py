"""``posesvc video`` on a tiny generated clip, in-process and against the loopback server."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import pytest

from service.cli import video

from .conftest import Clip, LiveServer


def write_clip(clip: Clip, path: Path, n: int) -> Path:
    h, w = clip.frames[0].shape[:2]
    vw = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"mp4v"), 10.0, (w, h))
    for f in clip.frames[:n]:
        vw.write(f[..., ::-1].copy())
    vw.release()
    return path


def run_video(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="posesvc")
    video.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["video", *argv])
    rc: int = args.func(args)
    return rc


def check_outputs(out: Path, jsonl: Path, n: int, size: tuple[int, int]) -> list[dict]:
    cap = cv2.VideoCapture(str(out))
    assert int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) == n
    assert (int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))) == size
    cap.release()
    lines = [json.loads(x) for x in jsonl.read_text().splitlines()]
    assert [x["frame_id"] for x in lines] == list(range(n))
    return lines


@pytest.mark.parametrize("mode", ["local", "remote"])
def test_video_command(mode: str, tmp_path: Path, clip: Clip, live: LiveServer, small_card_path: Path,
                       small_weights: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("POSESVC_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setenv("POSESVC_ENGINE__WARMUP", "false")
    n = 6
    src = write_clip(clip, tmp_path / "in.mp4", n)
    boxes = json.dumps(clip.boxes[0].tolist())
    argv = [str(src), "--out", str(tmp_path / "out.mp4"), "--json", str(tmp_path / "out.jsonl"), "--boxes", boxes,
            "--detect-every", "3", "--tracker", "iou", "--no-flip", "--no-progress"]  # fmt: skip
    if mode == "remote":
        argv += ["--url", f"grpc://{live.target}"]
    else:
        argv += ["--card", str(small_card_path), "--weights", str(small_weights), "--device", "cpu",
                 "--detector-weights", "yolov8n.yaml"]  # fmt: skip
    assert run_video(argv) == 0
    h, w = clip.frames[0].shape[:2]
    lines = check_outputs(tmp_path / "out.mp4", tmp_path / "out.jsonl", n, (w, h))
    assert all(x["outcome"] == "processed" for x in lines)
    # Frame 0 uses the given boxes, frames 1-2 the tracked ones, with the same two track ids.
    assert lines[0]["boxes_source"] == "client" and lines[1]["boxes_source"] == "tracker"
    assert [p["track_id"] for p in lines[0]["persons"]] == [1, 2]
    # (random fixture weights: OKS-NMS may merge the two noisy poses later on; ids are never new ones)
    assert {p["track_id"] for p in lines[2]["persons"]} <= {1, 2} and lines[2]["boxes_source"] == "tracker"
    assert len(lines[2]["persons"][0]["keypoints"]) == 17
    assert lines[3]["detector_ran"]
