"""SimpleBaseline (``pose_resnet``) against the official DarkPose code: key layout (R50/101/152, MMPose 1.x),
parameter counts, the network's output with the recipe weights, and the official COCO test path end to end
(R50 128x96: BGR crops, blur kernel 3, flip test, DARK, rescoring, OKS-NMS)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from service.nets import build_net, load_into
from service.nets.profile import count_params
from service.pipeline.card import parse_card
from service.pipeline.estimator import EstimatorConfig, PoseEstimator
from service.pipeline.image import read_image_file

from .conftest import check_official_test_path, recipe_state_dict

DEPTHS = {50: 33_999_697, 101: 52_991_825, 152: 68_635_473}  # MODEL_ZOO.md / the official state_dicts
R50_128x96 = {
    "name": "pose_resnet_50_128x96_test",
    "architecture": {"name": "pose_resnet", "depth": 50, "num_joints": 17},
    "input": {"size": [96, 128], "color": "bgr"},
    "heatmap": {"size": [24, 32]},
    "geometry": {"convention": "darkpose"},
    "codec": {"name": "dark", "blur_kernel": 3, "sigma": 1},
}


@pytest.mark.parametrize("depth", sorted(DEPTHS))
def test_keys_and_params_match_official(zoo_dir, depth):
    net = build_net("pose_resnet", {"depth": depth})
    expected = json.loads((zoo_dir / f"keys_res{depth}.json").read_text())
    assert [[k, list(v.shape)] for k, v in net.state_dict().items()] == expected
    assert count_params(net) == DEPTHS[depth]


@pytest.fixture(scope="module")
def r50(zoo_dir, zoo_seed):
    keys = json.loads((zoo_dir / "keys_res50.json").read_text())
    net = build_net("pose_resnet", {"depth": 50})
    net.load_state_dict(recipe_state_dict(keys, zoo_seed), strict=True)
    return net.eval()


@pytest.mark.parametrize("head", ["head.", "keypoint_head."])  # MMPose 1.x and 0.x (the shipped cards' files)
def test_mmpose_layout_loads_into_the_same_network(zoo_dir, zoo_seed, r50, head):
    rows = json.loads((zoo_dir / "keys_res50_mmpose1x.json").read_text())
    official = recipe_state_dict([[off, shape] for _mm, shape, off in rows], zoo_seed)
    mm = {head + mm_name[len("head.") :] if mm_name.startswith("head.") else mm_name: official[off]
          for mm_name, _shape, off in rows}  # fmt: skip
    # the head: 3 deconvs (weight) + 3 BNs (5 entries each) + final_layer (weight, bias) = 20 entries
    assert sum(k.startswith(head) for k in mm) == 20
    net = build_net("pose_resnet", {"depth": 50})
    load_into(net, mm, "auto")  # the layout is recognised, then mapped by the family's mmpose filter
    ref = r50.state_dict()
    assert all(torch.equal(v, ref[k]) for k, v in net.state_dict().items())


def test_network_output_matches_official(zoo_dir, r50):
    io = np.load(zoo_dir / "net_io.npz")
    with torch.inference_mode():
        out = r50(torch.from_numpy(io["res50_128x96_input"])).numpy()
    np.testing.assert_allclose(out, io["res50_128x96_output"], atol=1e-4, rtol=0)


def test_e2e_res50_128x96_official_test_path(zoo_dir, r50):
    common = np.load(zoo_dir / "e2e_common.npz")
    est = PoseEstimator(parse_card(R50_128x96, source="test"), r50, trained=True,
                        config=EstimatorConfig(max_batch_crops=64))  # fmt: skip
    # the crops the network sees are the official BGR crops, bit for bit
    image = read_image_file(str(zoo_dir.parent.parent / "data" / "coco_samples" / str(common["image_files"][0])),
                            honour_exif=False)  # fmt: skip
    assert int(common["image_index"][0]) == 0
    first = est.prepare(image, np.array([[*common["boxes_xywh"][0], 1.0]]))
    np.testing.assert_array_equal(first.crops[0], common["crops_bgr"][0])
    check_official_test_path(zoo_dir, "res50_128x96", est)
