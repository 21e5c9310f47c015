"""``posesvc annotate`` embedded: images, videos and a COCO annotation file in one job; bad items (a corrupt
image, a truncated video, a file that is no video) are recorded and counted, never fatal; a rerun skips what
is done and redoes a video that did not finish."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from service.cli.main import main
from service.jobs.journal import read_records


def _write_video(path: Path, image: np.ndarray, frames: int) -> None:
    h, w = image.shape[:2]
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10.0, (w, h))
    for i in range(frames):
        out.write(np.roll(image, 3 * i, axis=1))
    out.release()


@pytest.fixture(scope="module")
def backlog(tmp_path_factory, data_dir) -> Path:
    root = tmp_path_factory.mktemp("backlog")
    samples = data_dir / "coco_samples"
    (root / "photos").mkdir()
    for name in ("000000000785.jpg", "000000196141.jpg"):
        shutil.copy(samples / name, root / "photos" / name)
    (root / "photos" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG")
    bgr = cv2.resize(cv2.imread(str(samples / "000000196141.jpg")), (160, 112))
    _write_video(root / "clip.mp4", bgr, 6)
    _write_video(root / "long.mp4", bgr, 40)
    data = (root / "long.mp4").read_bytes()
    (root / "truncated.mp4").write_bytes(data[: len(data) // 2])
    (root / "broken.avi").write_bytes(b"RIFF....AVI garbage")
    (root / "long.mp4").unlink()
    return root


def _args(out: Path, small_card_path: Path, small_weights: Path, *inputs: str) -> list[str]:
    return ["annotate", *inputs, "--out", str(out), "--card", str(small_card_path), "--weights", str(small_weights),
            "--detector-weights", "yolov8n.yaml", "--allow-untrained", "--no-progress", "--batch-images", "4"]  # fmt: skip


def test_images_and_videos_with_bad_items_and_resume(backlog, small_card_path, small_weights, tmp_path, capsys):
    out = tmp_path / "job"
    inputs = [str(backlog / "photos"), str(backlog / "*.mp4"), str(backlog / "broken.avi")]
    assert main(_args(out, small_card_path, small_weights, *inputs)) == 0
    records = read_records(out / "annotations.jsonl")
    by_item: dict[str, list[dict]] = {}
    for r in records:
        by_item.setdefault(r["item"], []).append(r)
    keys = list(by_item)
    assert keys == [str(backlog / "photos" / n) for n in ("000000000785.jpg", "000000196141.jpg", "corrupt.jpg")] + [
        str(backlog / "clip.mp4"), str(backlog / "truncated.mp4"), str(backlog / "broken.avi")]  # fmt: skip
    corrupt = by_item[str(backlog / "photos" / "corrupt.jpg")]
    assert len(corrupt) == 1 and corrupt[0]["error"].startswith("undecodable_image")
    good = by_item[str(backlog / "photos" / "000000000785.jpg")][0]
    assert good["error"] is None and (good["width"], good["height"]) == (640, 425)
    clip = by_item[str(backlog / "clip.mp4")]
    assert [r["frame"] for r in clip[:-1]] == list(range(6)) and clip[-1] == {
        "item": str(backlog / "clip.mp4"), "kind": "video", "path": str(backlog / "clip.mp4"), "frames": 6, "error": None}
    assert all("track_id" in p for r in clip[:-1] for p in r["persons"])
    truncated = by_item[str(backlog / "truncated.mp4")][-1]
    assert truncated["kind"] == "video" and truncated["error"].split(":")[0] in ("truncated_video", "undecodable_video")
    assert by_item[str(backlog / "broken.avi")][-1]["error"].startswith("undecodable_video")
    summary = json.loads((out / "summary.json").read_text())
    assert summary["items"] == 6 and summary["done"] == 6 and summary["errors"] == 3 and summary["video_frames"] >= 6
    assert "3 bad" in capsys.readouterr().out
    # a rerun does nothing new and writes nothing twice
    before = (out / "annotations.jsonl").read_text()
    assert main(_args(out, small_card_path, small_weights, *inputs)) == 0
    assert (out / "annotations.jsonl").read_text() == before
    assert json.loads((out / "summary.json").read_text())["skipped_done_before"] == 6
    # a job killed inside a video: its frames without the final record are dropped and the video redone
    lines = before.splitlines(keepends=True)
    cut = next(i for i, line in enumerate(lines) if '"frame":3' in line and "clip.mp4" in line)
    kept = [line for line in lines[:cut] if "clip.mp4" in line or "photos" in line]
    (out / "annotations.jsonl").write_text("".join(kept))
    assert main(_args(out, small_card_path, small_weights, *inputs)) == 0
    again = read_records(out / "annotations.jsonl")
    assert [r.get("frame") for r in again if r["item"] == str(backlog / "clip.mp4")] == [0, 1, 2, 3, 4, 5, None]
    assert sorted({r["item"] for r in again}) == sorted(keys)


def test_coco_annotation_file_with_ground_truth_boxes(data_dir, small_card_path, small_weights, tmp_path):
    """``--ann/--images/--gt-boxes``: one record per image with its id, COCO results equal to running the same
    pipeline on the same boxes directly, and drawings under rendered/."""
    from service.evaluation.coco import ground_truth_boxes, load_coco
    from service.pipeline.card import load_card
    from service.pipeline.estimator import PoseEstimator
    from service.pipeline.image import read_image_file
    from service.pipeline.pipeline import PosePipeline

    samples = data_dir / "coco_samples"
    out = tmp_path / "coco"
    ann = samples / "test_coco.json"
    args = ["annotate", "--ann", str(ann), "--images", str(samples), "--gt-boxes", "--out", str(out), "--card",
            str(small_card_path), "--weights", str(small_weights), "--no-progress", "--render"]  # fmt: skip
    assert main(args) == 0
    coco = load_coco(ann)
    ids = sorted(coco.getImgIds())
    records = read_records(out / "annotations.jsonl")
    assert [r["image_id"] for r in records] == ids
    results = json.loads((out / "results.json").read_text())
    boxes = ground_truth_boxes(coco, ids)
    pipe = PosePipeline(PoseEstimator.from_card(load_card(small_card_path), small_weights))
    first = ids[0]
    image = read_image_file(str(samples / coco.loadImgs([first])[0]["file_name"]), honour_exif=False)
    direct = pipe.run([image], [boxes[first]])[0].to_coco(first)
    got = [e for e in results if e["image_id"] == first]
    assert len(got) == len(direct) > 0
    for a, b in zip(got, direct, strict=True):
        np.testing.assert_allclose(a["keypoints"], b["keypoints"], atol=1e-2)
    assert len(list((out / "rendered").glob("*.jpg"))) == len(ids)


def test_nothing_to_annotate(tmp_path, capsys):
    assert main(["annotate", str(tmp_path / "nope*.jpg"), "--out", str(tmp_path / "o")]) == 2
    assert "no such file, folder or matching pattern" in capsys.readouterr().err
