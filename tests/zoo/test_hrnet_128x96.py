"""HRNet-W32 at 128x96 (the shipped ``hrnet_w32_128x96_darkpose`` card: RGB crops, blur kernel 3) against the
official DarkPose COCO test path, with the fixture set's recipe weights (``nd_scale`` 0.5)."""

from __future__ import annotations

import json

import numpy as np
import torch

from service.nets import build_net
from service.pipeline.card import load_card
from service.pipeline.crop import normalise
from service.pipeline.estimator import EstimatorConfig, PoseEstimator

from .conftest import check_official_test_path, recipe_state_dict


def test_e2e_w32_128x96_official_test_path(zoo_dir, zoo_seed):
    card = load_card("hrnet_w32_128x96_darkpose")
    keys = json.loads((zoo_dir / "keys_w32.json").read_text())
    net = build_net(card.architecture, card.arch_params)
    net.load_state_dict(recipe_state_dict(keys, zoo_seed, nd_scale=0.5), strict=True)
    est = PoseEstimator(card, net.eval(), trained=True, config=EstimatorConfig(max_batch_crops=64))
    # the network + flip path on the official crops reproduces the official averaged heatmaps
    common = np.load(zoo_dir / "e2e_common.npz")
    e = np.load(zoo_dir / "e2e_w32_128x96.npz")
    rgb = np.ascontiguousarray(common["crops_bgr"][e["averaged_index"]][..., ::-1])
    x = normalise(torch.from_numpy(rgb), card.mean, card.std)
    np.testing.assert_allclose(est.heatmaps(x, flip=True).numpy(), e["averaged"], atol=1e-4, rtol=0)
    check_official_test_path(zoo_dir, "w32_128x96", est)
