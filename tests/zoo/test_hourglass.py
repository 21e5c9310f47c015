"""Stacked Hourglass against the official DarkPose code: key layouts (4 and 8 stacks, the 16-joint 2020 file),
parameter counts, and the outputs of both forward variants with the recipe weights (``nd_scale`` 0.5): the 2021
file (innermost upsampling fixed to 4x3, 128x96, every stack) and the 2020 file (scale factor 2, 256x256)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from service.nets import build_net
from service.nets.profile import count_params
from service.pipeline.card import load_card

from .conftest import recipe_state_dict

#: keys file → (card parameters, official parameter count; MODEL_ZOO.md, the official state_dicts)
CASES = {
    "keys_hg4.json": ({"num_stacks": 4, "innermost_size": [4, 3]}, 13_020_612),
    "keys_hg8.json": ({"num_stacks": 8, "innermost_size": [4, 3]}, 25_598_472),
    "keys_hg4_2020_j16.json": ({"num_stacks": 4, "num_joints": 16}, 13_018_816),
}


@pytest.mark.parametrize("keys_file", sorted(CASES))
def test_keys_and_params_match_official(zoo_dir, keys_file):
    params, count = CASES[keys_file]
    net = build_net("hourglass", params)
    expected = json.loads((zoo_dir / keys_file).read_text())
    assert [[k, list(v.shape)] for k, v in net.state_dict().items()] == expected
    assert count_params(net) == count


def _recipe_net(zoo_dir, seed, keys_file):
    net = build_net("hourglass", CASES[keys_file][0])
    net.load_state_dict(recipe_state_dict(json.loads((zoo_dir / keys_file).read_text()), seed, nd_scale=0.5))
    return net.eval()


def test_2021_forward_every_stack(zoo_dir, zoo_seed):
    io = np.load(zoo_dir / "net_io.npz")
    net = _recipe_net(zoo_dir, zoo_seed, "keys_hg4.json")
    with torch.inference_mode():
        outs = np.stack([o.numpy() for o in net(torch.from_numpy(io["hg4_head_128x96_input"]))])
    np.testing.assert_allclose(outs, io["hg4_head_128x96_outputs"], atol=5e-5, rtol=1e-4)


def test_2020_forward_16_joints(zoo_dir, zoo_seed):
    io = np.load(zoo_dir / "net_io.npz")
    net = _recipe_net(zoo_dir, zoo_seed, "keys_hg4_2020_j16.json")
    with torch.inference_mode():
        last = net(torch.from_numpy(io["hg4_2020_256x256_j16_input"]))[-1].numpy()
    np.testing.assert_allclose(last, io["hg4_2020_256x256_j16_output"], atol=5e-5, rtol=1e-4)


@pytest.mark.parametrize("card_name", ["hourglass_4_128x96_darkpose", "hourglass_8_128x96_darkpose"])
def test_cards_build_the_2021_network_and_decode_the_last_stack(card_name):
    card = load_card(card_name)
    assert card.color == "bgr" and card.blur_kernel == 11 and card.input_size == (96, 128)
    net = build_net(card.architecture, card.arch_params, seed_key=card.name)
    from service.nets import get_net

    with torch.inference_mode():
        raw = net(torch.zeros(1, 3, 128, 96))
    (heatmaps,) = get_net(card.architecture).outputs(raw)
    assert heatmaps.shape == (1, 17, 32, 24) and heatmaps is raw[-1]
