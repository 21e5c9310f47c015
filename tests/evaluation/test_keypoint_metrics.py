"""PCK@0.2 (torso), PDJ, strict PCP, AUC and EPE on hand-computed cases (the definitions of
``bearpaw/eval_pose``'s ``eval_pck.m`` / ``eval_pdj.m`` / ``eval_pcp.m``, worked out by hand below)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from service.errors import InvalidInput
from service.evaluation import keypoint_metrics as km
from service.zoo.keypoints import COCO17, MPII16

J = {n: i for i, n in enumerate(MPII16.joints)}


def _person() -> np.ndarray:
    """An MPII skeleton whose torso (left_shoulder → right_hip) is 3-4-5: torso size 5 px."""
    g = np.zeros((16, 2))
    pos = {"right_hip": (0, 4), "left_hip": (4, 4), "right_shoulder": (-3, 0), "left_shoulder": (3, 0),
           "right_knee": (0, 10), "left_knee": (4, 10), "right_ankle": (0, 16), "left_ankle": (4, 16),
           "right_elbow": (-3, 5), "left_elbow": (3, 5), "right_wrist": (-3, 9), "left_wrist": (3, 9),
           "pelvis": (2, 4), "thorax": (0, 0), "upper_neck": (0, -1), "head_top": (0, -5)}  # fmt: skip
    for name, xy in pos.items():
        g[J[name]] = xy
    return g


def test_torso_pck_pdj_auc_epe_by_hand():
    gt = np.stack([_person(), _person()])
    pred = gt.copy()
    # sample 0: head_top off by 1 px (0.2 torso: correct at 0.2, '<='), right_wrist off by 1.5 px (0.3)
    pred[0, J["head_top"]] += (0.0, 1.0)
    pred[0, J["right_wrist"]] += (1.5, 0.0)
    # sample 1: right_knee off by 5 px (1.0 torso); left_ankle not annotated (its error is ignored)
    pred[1, J["right_knee"]] += (3.0, 4.0)
    pred[1, J["left_ankle"]] += (100.0, 0.0)
    vis = np.ones((2, 16), bool)
    vis[1, J["left_ankle"]] = False
    ks = km.make_keypoint_set(pred, gt, vis, MPII16)
    np.testing.assert_allclose(km.torso_sizes(ks), [5.0, 5.0])
    counted = 31
    res = km.pck(ks)
    assert res["mean"] == pytest.approx(100 * 29 / counted)  # wrist (0.3) and knee (1.0) miss at 0.2
    assert res["head_top"] == 100.0 and res["wrist"] == pytest.approx(75.0) and res["knee"] == pytest.approx(75.0)
    assert res["ankle"] == 100.0  # left_ankle counted once (sample 0), right twice: both 100 %
    pdj = km.pdj(ks)
    assert pdj == pytest.approx({"@0.1": 100 * 28 / counted, "@0.2": 100 * 29 / counted,
                                 "@0.3": 100 * 30 / counted, "@0.4": 100 * 30 / counted})  # fmt: skip
    # mean PCK curve over t = 0, 0.01, ..., 0.2: 28/31 below 0.2 (the exact-zero errors count at t = 0 too),
    # 29/31 at 0.2 itself; the trapezoid over the rescaled [0, 1] axis
    curve = np.array([28] * 20 + [29]) / counted * 100
    assert km.auc(ks) == pytest.approx(float(np.sum((curve[1:] + curve[:-1]) / 2 * 0.05)))
    assert km.epe(ks) == pytest.approx((1.0 + 1.5 + 5.0) / counted)


def test_strict_pcp_by_hand():
    gt = _person()[None]
    pred = gt.copy()
    # right upper arm: shoulder (-3,0) -> elbow (-3,5), length 5: elbow off by 2.5 (= 0.5, '<=': correct)
    pred[0, J["right_elbow"]] += (2.5, 0.0)
    # left lower leg: knee (4,10) -> ankle (4,16), length 6: ankle off by 3.5 (> 0.5 x 6): wrong;
    # the left upper leg (hip -> knee, length 6) keeps both endpoints: correct
    pred[0, J["left_ankle"]] += (0.0, 3.5)
    # right_wrist off by 2.1: the right lower arm (elbow, wrist; length 4) has its elbow off by 2.5 > 2: wrong
    pred[0, J["right_wrist"]] += (2.1, 0.0)
    ks = km.make_keypoint_set(pred, gt, np.ones((1, 16), bool), MPII16)
    res = km.pcp(ks)
    assert res["upper_arm"] == 100.0 and res["lower_arm"] == 50.0 and res["lower_leg"] == 50.0
    assert res["upper_leg"] == 100.0 and res["torso"] == 100.0 and res["head"] == 100.0
    assert res["mean"] == pytest.approx(100 * 8 / 10)  # 4 limb kinds x 2 sides + torso + head


def test_missing_annotations_and_unknown_names():
    gt = np.stack([_person()])
    vis = np.ones((1, 16), bool)
    vis[0, J["left_shoulder"]] = False  # no torso size: the sample leaves PCK/PDJ/AUC
    ks = km.make_keypoint_set(gt, gt, vis, MPII16)
    assert math.isnan(km.pck(ks)["mean"])
    assert km.pcp(ks)["upper_arm"] == 100.0  # the right arm still counts; the left one is not annotated
    assert km.epe(ks) == 0.0
    with pytest.raises(InvalidInput, match="unknown metric"):
        km.compute(ks, ["pckh2"])
    coco = km.make_keypoint_set(np.zeros((1, 17, 2)), np.zeros((1, 17, 2)), np.ones((1, 17)), COCO17)
    assert "head" not in km.pcp(coco)  # COCO has no neck / head top
