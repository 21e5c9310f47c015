"""One ``posesvc serve`` with four zoo cards (HRNet, SimpleBaseline, Hourglass, and MPII HRNet), untrained
(seeded weights: the same networks in every process): each model answers over REST, gRPC and a gRPC video
stream, with its own joints, and its keypoints equal those of the same card run in this process."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from service.client.grpc_client import GrpcPoseClient, StreamFrame
from service.client.http_client import HttpPoseClient
from service.pipeline.card import load_card
from service.pipeline.estimator import PoseEstimator
from service.pipeline.image import decode_image
from service.schemas import PoseOptions
from service.streaming.session import StreamOptions

from ..transport.conftest import Server, start_server, stop_server

CARDS = ("hrnet_w32_128x96_darkpose", "pose_resnet_50_128x96_darkpose", "hourglass_4_128x96_darkpose",
         "hrnet_w32_256x256_mpii_darkpose")  # fmt: skip
BOX = [[60.0, 40.0, 180.0, 260.0, 0.9]]


@pytest.fixture(scope="module")
def zoo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    extra = [a for c in CARDS[1:] for a in ("--card", c)]
    srv = start_server(tmp_path_factory.mktemp("zoo-srv"), Path(CARDS[0]), None, extra_args=extra, timeout_s=300)
    yield srv
    stop_server(srv)


@pytest.fixture(scope="module")
def jpeg(data_dir: Path) -> bytes:
    return (data_dir / "coco_samples" / "000000196141.jpg").read_bytes()


def _local(card_name: str, jpeg: bytes) -> np.ndarray:
    est = PoseEstimator.from_card(load_card(card_name), None, allow_untrained=True)
    res = est.estimate([decode_image(jpeg)], [np.array(BOX)], PoseOptions(flip=True))[0]
    return res.persons[0].keypoints


def _same_keypoints(got: np.ndarray, ref: np.ndarray, name: str) -> None:
    """Scores (heatmap maxima) to 1e-4; coordinates to 1e-4 relative + 0.01 px: the server batches crops
    differently, and untrained heatmaps are not Gaussian, so DARK's Taylor step amplifies float round-off."""
    np.testing.assert_allclose(got[:, 2], ref[:, 2], atol=1e-4, rtol=0, err_msg=name)
    np.testing.assert_allclose(got[:, :2], ref[:, :2], atol=1e-2, rtol=1e-4, err_msg=name)


def test_every_card_answers_over_rest_grpc_and_stream(zoo_server: Server, jpeg: bytes) -> None:
    http = HttpPoseClient(zoo_server.http)
    grpc_client = GrpcPoseClient(zoo_server.grpc)
    try:
        listed = http.models()["models"]
        assert [m["name"] for m in listed] == list(CARDS)
        assert [len(m["joints"]) for m in listed] == [17, 17, 17, 16]
        rgb = decode_image(jpeg)
        for name in CARDS:
            card = load_card(name)
            rest = http.estimate(jpeg, BOX, PoseOptions(flip=True), model=name)
            unary = grpc_client.estimate(jpeg, boxes=BOX, options=PoseOptions(flip=True), model=name)
            frames = [StreamFrame(i, rgb, BOX if i == 0 else None, i / 10.0) for i in range(2)]
            answers = [a.result for a in grpc_client.stream(frames, StreamOptions(detect_every=100, model=name))]
            for res in (rest, unary, *answers):
                assert res is not None and res.model == name and res.trained is False
                assert res.joint_names == card.joint_names and len(res.persons) == 1
            local = _local(name, jpeg)
            first = answers[0]
            assert first is not None  # the stream's first frame has the client's box
            for res in (rest, unary, first):
                _same_keypoints(res.persons[0].keypoints, local, name)
    finally:
        http.close()
        grpc_client.close()
