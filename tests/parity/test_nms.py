"""Rescoring, OKS and (soft) OKS-NMS against the official ``nms.py``."""

from __future__ import annotations

import json

import numpy as np
import pytest

from service.pipeline.postprocess import oks_iou, oks_nms, rescore, soft_oks_nms


@pytest.fixture(scope="module")
def cases(fixtures_dir):
    return json.loads((fixtures_dir / "nms_cases.json").read_text())


def _arrays(img):
    kp = np.array([p["keypoints"] for p in img["persons"]], dtype=np.float32)
    areas = np.array([p["area"] for p in img["persons"]], dtype=np.float64)
    box = np.array([p["box_score"] for p in img["persons"]], dtype=np.float64)
    return kp, areas, box


def test_sigmas_are_coco(cases):
    from service.zoo.keypoints import COCO17

    # the fixture lists the literal array of nms.py, which divides it by 10
    np.testing.assert_allclose(np.array(cases["oks_sigmas"]) / 10.0, COCO17.sigmas)


def test_rescoring(cases):
    for img in cases["images"]:
        kp, _, box = _arrays(img)
        np.testing.assert_allclose(
            rescore(box, kp[..., 2], cases["in_vis_thre"]), img["rescored"], atol=1e-6, rtol=0
        )


def test_oks(cases):
    checked = 0
    for img in cases["images"]:
        if "oks_iou_person0_vs_rest" not in img:
            continue
        checked += 1
        kp, areas, _ = _arrays(img)
        got = oks_iou(kp[0], kp[1:], float(areas[0]), areas[1:], np.array(cases["oks_sigmas"]) / 10.0)
        np.testing.assert_allclose(got, img["oks_iou_person0_vs_rest"], atol=1e-6)
    assert checked > 0


def test_keep_lists(cases):
    for img in cases["images"]:
        kp, areas, _ = _arrays(img)
        scores = np.array(img["rescored"])
        assert oks_nms(kp, scores, areas, 0.9) == img["oks_nms_keep_thr0.9"]
        assert oks_nms(kp, scores, areas, 0.5) == img["oks_nms_keep_thr0.5"]
        assert soft_oks_nms(kp, scores, areas, 0.9) == img["soft_oks_nms_keep_thr0.9"]
