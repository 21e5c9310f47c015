"""A bottom-up DEKR card served next to a top-down card in one ``posesvc serve`` (untrained, seeded weights;
the DEKR card copied with a 128-px test size to keep the CPU cost small): REST, gRPC and a gRPC stream answer
without boxes, with the same persons as the card run in this process; boxes sent to the bottom-up model are
refused with 422 ``boxes_not_supported`` / INVALID_ARGUMENT naming it, and the top-down model still takes them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest

from service.client.base import ClientError
from service.client.grpc_client import GrpcPoseClient, StreamFrame
from service.pipeline.bottomup import BottomUpEstimator
from service.pipeline.card import load_card
from service.pipeline.image import decode_image
from service.pipeline.pipeline import PosePipeline
from service.schemas import PoseOptions
from service.streaming.session import StreamOptions
from service.zoo.keypoints import COCO17

from ..transport.conftest import Server, start_server, stop_server

REPO = Path(__file__).resolve().parents[2]
TOPDOWN = "hrnet_w32_128x96_darkpose"
BOX = [[60.0, 40.0, 180.0, 260.0]]


@pytest.fixture(scope="module")
def small_dekr_card(tmp_path_factory: pytest.TempPathFactory) -> Path:
    text = (REPO / "models" / "dekr_w32_512_coco.toml").read_text()
    text = text.replace('name = "dekr_w32_512_coco"', 'name = "dekr_w32_128_test"')
    text = text.replace("size = [512, 512]", "size = [128, 128]").replace("input_size = 512", "input_size = 128")
    path = tmp_path_factory.mktemp("cards") / "dekr_w32_128_test.toml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def mixed_server(tmp_path_factory: pytest.TempPathFactory, small_dekr_card: Path) -> Iterator[Server]:
    srv = start_server(tmp_path_factory.mktemp("bu-srv"), small_dekr_card, None, extra_args=["--card", TOPDOWN],
                       timeout_s=300)  # fmt: skip
    yield srv
    stop_server(srv)


@pytest.fixture(scope="module")
def jpeg(data_dir: Path) -> bytes:
    return (data_dir / "coco_samples" / "000000196141.jpg").read_bytes()


def _kpts(result) -> np.ndarray:  # type: ignore[no-untyped-def]
    return np.stack([p.keypoints for p in result.persons]) if result.persons else np.zeros((0, 17, 3))


def test_bottomup_next_to_topdown(mixed_server: Server, small_dekr_card: Path, jpeg: bytes) -> None:
    name = "dekr_w32_128_test"
    models = httpx.get(f"{mixed_server.http}/v1/models", timeout=30).json()["models"]
    assert [m["name"] for m in models] == [name, TOPDOWN]
    scrape = httpx.get(f"{mixed_server.http}/metrics", timeout=30).text
    assert f'posesvc_model_info{{backend="torch",keypoint_schema="coco17",mode="bottomup",model="{name}"}} 1.0' in scrape
    assert f'mode="topdown",model="{TOPDOWN}"}} 1.0' in scrape
    # REST, no boxes: persons found by the network itself
    r = httpx.post(f"{mixed_server.http}/v1/pose", files={"image": ("x.jpg", jpeg, "image/jpeg")},
                   data={"model": name}, timeout=120)  # fmt: skip
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"]["name"] == name and body["boxes_source"] == "none"
    assert all([k["name"] for k in p["keypoints"]] == list(COCO17.joints) for p in body["persons"])
    # the same card in this process gives the same persons
    local = PosePipeline(BottomUpEstimator.from_card(load_card(small_dekr_card), None, allow_untrained=True))
    ref = local.run([decode_image(jpeg)], [None], PoseOptions(flip=True))[0]
    rest = np.array([[[k["x"], k["y"], k["score"]] for k in p["keypoints"]] for p in body["persons"]]).reshape(-1, 17, 3)
    assert len(rest) == len(ref.persons)
    np.testing.assert_allclose(rest, _kpts(ref), rtol=1e-3, atol=1e-2)
    # boxes sent to the bottom-up model: 422 naming it; the top-down model takes them
    bad = httpx.post(f"{mixed_server.http}/v1/pose", files={"image": ("x.jpg", jpeg, "image/jpeg")},
                     data={"model": name, "boxes": str(BOX)}, timeout=60)  # fmt: skip
    assert bad.status_code == 422 and bad.json()["type"].endswith(":boxes_not_supported") and name in bad.json()["detail"]
    ok = httpx.post(f"{mixed_server.http}/v1/pose", files={"image": ("x.jpg", jpeg, "image/jpeg")},
                    data={"model": TOPDOWN, "boxes": str(BOX)}, timeout=120)  # fmt: skip
    assert ok.status_code == 200 and len(ok.json()["persons"]) == 1
    client = GrpcPoseClient(mixed_server.grpc)
    try:
        unary = client.estimate(jpeg, model=name)
        assert unary.model == name and len(unary.persons) == len(ref.persons)
        np.testing.assert_allclose(_kpts(unary), _kpts(ref), rtol=1e-3, atol=1e-2)
        with pytest.raises(ClientError) as err:
            client.estimate(jpeg, boxes=BOX, model=name)
        assert err.value.status == grpc.StatusCode.INVALID_ARGUMENT.name and err.value.code == "boxes_not_supported"
        rgb = decode_image(jpeg)
        frames = [StreamFrame(i, rgb, None, i / 10.0) for i in range(2)]
        answers = list(client.stream(frames, StreamOptions(detect_every=5, model=name)))  # forced to every frame
        assert [a.outcome for a in answers] == ["processed", "processed"]
        for a in answers:
            assert a.result is not None and a.result.model == name and len(a.result.persons) == len(ref.persons)
    finally:
        client.close()


def test_eval_runs_a_bottomup_card_without_boxes(small_dekr_card: Path, data_dir: Path, tmp_path: Path) -> None:
    """``posesvc eval`` on COCO annotations with a bottom-up card: no detection file, no detector; one results
    entry per person the model found, scored by pycocotools."""
    import json

    from service.cli.main import main

    samples = data_dir / "coco_samples"
    out = tmp_path / "r.json"
    args = ["eval", "--ann", str(samples / "test_coco.json"), "--images", str(samples), "--card", str(small_dekr_card),
            "--allow-untrained", "--no-progress", "--out", str(out), "--image-ids", "785"]  # fmt: skip
    assert main(args) == 0
    report = json.loads(out.with_suffix(".stats.json").read_text())
    assert report["boxes"] == "bottom-up" and report["decoder"] == "dekr" and 0.0 <= report["stats"]["AP"] <= 1.0
    assert all(e["image_id"] == 785 and len(e["keypoints"]) == 51 for e in json.loads(out.read_text()))
    assert main([*args[:-2], "--gt-boxes"]) == 2


def test_images_of_one_padded_size_share_a_forward(small_dekr_card: Path, data_dir: Path) -> None:
    """Two photos whose resized sizes agree go through one forward (4 images with flip) and give what each
    gives alone; a third of another size gets its own forward."""
    est = BottomUpEstimator.from_card(load_card(small_dekr_card), None, allow_untrained=True)
    a = decode_image((data_dir / "coco_samples" / "000000040083.jpg").read_bytes())
    b = decode_image((data_dir / "coco_samples" / "000000196141.jpg").read_bytes())
    c = decode_image((data_dir / "coco_samples" / "000000197388.jpg").read_bytes())
    alone = [est.estimate([im], [None], PoseOptions(flip=True))[0] for im in (a, b, c)]
    before = est.forward_count
    together = est.estimate([a, b, c], [None, None, None], PoseOptions(flip=True))
    assert est.forward_count - before == 2
    for x, y in zip(together, alone, strict=True):
        assert len(x.persons) == len(y.persons)
        np.testing.assert_allclose(_kpts(x), _kpts(y), rtol=1e-3, atol=1e-2)


def test_video_cli_tracks_a_bottomup_model(small_dekr_card: Path, data_dir: Path, tmp_path: Path) -> None:
    """``posesvc video`` in-process with the bottom-up card: every frame runs the whole image (no detector),
    persons carry track ids, and ``--boxes`` is refused with one line."""
    import json

    import cv2

    from service.cli.main import main

    bgr = cv2.resize(cv2.imread(str(data_dir / "coco_samples" / "000000196141.jpg")), (192, 128))
    src = tmp_path / "in.mp4"
    vw = cv2.VideoWriter(str(src), cv2.VideoWriter.fourcc(*"mp4v"), 10.0, (192, 128))
    for i in range(3):
        vw.write(np.roll(bgr, 2 * i, axis=1))
    vw.release()
    base = [str(src), "--out", str(tmp_path / "out.mp4"), "--json", str(tmp_path / "out.jsonl"), "--card",
            str(small_dekr_card), "--allow-untrained", "--detector-weights", "yolov8n.yaml", "--no-progress",
            "--detect-every", "5"]  # fmt: skip
    assert main(["video", *base]) == 0
    lines = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [x["frame_id"] for x in lines] == [0, 1, 2] and all(x["outcome"] == "processed" for x in lines)
    assert all("track_id" in p for x in lines for p in x["persons"])
    assert main(["video", *base, "--boxes", "[[10, 10, 50, 80]]"]) == 2
