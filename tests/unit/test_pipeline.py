"""Pipeline behaviour: pooled batches equal single runs, one 2N forward for flip, zero persons → no forward,
box validation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from service.errors import InvalidBoxes
from service.pipeline.estimator import EstimatorConfig, PoseEstimator, validate_boxes
from service.pipeline.image import read_image_file
from service.pipeline.pipeline import PosePipeline
from service.schemas import PoseOptions


class CountingNet(torch.nn.Module):
    """Wraps a net and records the batch size of every forward."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.calls: list[int] = []

    def forward(self, x):
        self.calls.append(int(x.shape[0]))
        return self.net(x)


@pytest.fixture
def counting(small_card, small_estimator):
    net = CountingNet(small_estimator.net)
    est = PoseEstimator(small_card, net, trained=True, config=EstimatorConfig(max_batch_crops=4))
    return est, net


@pytest.fixture(scope="module")
def images(data_dir):
    root = data_dir / "coco_samples"
    return [read_image_file(str(root / n)) for n in ("000000000785.jpg", "000000040083.jpg")]


BOXES = [
    np.array([[280.8, 44.8, 218.2, 346.7, 0.99], [100.0, 50.0, 60.0, 120.0, 0.5]]),
    np.array(
        [[150.0, 60.0, 200.0, 300.0, 0.9], [-20.0, 200.0, 90.0, 180.0, 0.7], [400.0, 100.0, 80.0, 200.0, 0.3]]
    ),
]


def test_flip_is_one_2n_forward_per_chunk(counting, images):
    est, net = counting
    PosePipeline(est).run(images[:1], BOXES[:1], PoseOptions(flip=True))
    assert net.calls == [4]  # 2 crops + 2 mirrored crops in ONE forward
    net.calls.clear()
    PosePipeline(est).run(images[:1], BOXES[:1], PoseOptions(flip=False))
    assert net.calls == [2]


def test_crops_pool_across_images_in_chunks(counting, images):
    est, net = counting
    PosePipeline(est).run(images, BOXES, PoseOptions(flip=True))
    assert net.calls == [8, 2]  # 5 crops pooled, max_batch_crops=4 → chunks of 4 and 1 (×2 for flip)


def test_batched_equals_single(counting, images):
    est, _ = counting
    pipe = PosePipeline(est)
    batched = pipe.run(images, BOXES, PoseOptions(oks_nms=False))
    for img, boxes, res in zip(images, BOXES, batched, strict=True):
        single = pipe.run([img], [boxes], PoseOptions(oks_nms=False))[0]
        assert [p.box_index for p in single.persons] == [p.box_index for p in res.persons]
        for a, b in zip(single.persons, res.persons, strict=True):
            np.testing.assert_allclose(a.keypoints, b.keypoints, atol=1e-3)


def test_zero_persons_no_forward(counting, images):
    est, net = counting
    out = PosePipeline(est).run(images, [np.zeros((0, 4)), np.zeros((0, 5))])
    assert net.calls == []
    assert all(r.persons == () for r in out)
    assert out[0].image_size == (images[0].shape[1], images[0].shape[0])


def test_options_filter_and_limit(counting, images):
    est, _ = counting
    res = PosePipeline(est).run(images[1:], BOXES[1:], PoseOptions(oks_nms=False, max_persons=2))[0]
    assert len(res.persons) == 2
    assert res.persons[0].score >= res.persons[1].score
    res = PosePipeline(est).run(images[1:], BOXES[1:], PoseOptions(oks_nms=False, min_score=1e9))[0]
    assert res.persons == ()


def test_untrained_is_marked(small_card):
    est = PoseEstimator.from_card(small_card, None, allow_untrained=True)
    assert est.trained is False


@pytest.mark.parametrize(
    ("boxes", "match"),
    [
        ([[0, 0, float("nan"), 10]], "NaN or infinite"),
        ([[0, 0, float("inf"), 10]], "NaN or infinite"),
        ([[0, 0, 0, 10]], "non-positive"),
        ([[0, 0, 10, -5]], "non-positive"),
        ([[700, 10, 10, 10]], "entirely outside"),
        ([[-50, 10, 40, 10]], "entirely outside"),
        ([[1, 2, 3]], "shape"),
    ],
)
def test_bad_boxes(boxes, match):
    with pytest.raises(InvalidBoxes, match=match):
        validate_boxes(boxes, (640, 480))


def test_partly_outside_box_is_valid():
    out = validate_boxes([[-20, -10, 100, 50]], (640, 480))
    assert out.shape == (1, 5) and out[0, 4] == 1.0
