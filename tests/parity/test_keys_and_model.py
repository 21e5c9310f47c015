"""State-dict keys/shapes equal the official lists; the small checkpoint reproduces the official heatmaps."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from service.nets import build_net, load_checkpoint_file
from service.pipeline.card import load_card


@pytest.mark.parametrize(
    ("keys_file", "card"),
    [("keys_w32.json", "hrnet_w32_256x192_darkpose"), ("keys_w48.json", "hrnet_w48_384x288_darkpose"),
     ("keys_w32.json", "hrnet_w32_256x192_mmpose_dark"), ("keys_w48.json", "hrnet_w48_384x288_mmpose_dark")],
)  # fmt: skip
def test_state_dict_keys_match_official(fixtures_dir, keys_file, card):
    expected = json.loads((fixtures_dir / keys_file).read_text())
    c = load_card(card)
    net = build_net(c.architecture, c.arch_params)
    got = [[k, list(v.shape)] for k, v in net.state_dict().items()]
    assert got == expected


def test_small_keys_match(fixtures_dir, small_card):
    expected = json.loads((fixtures_dir / "keys_small.json").read_text())
    net = build_net(small_card.architecture, small_card.arch_params)
    assert [[k, list(v.shape)] for k, v in net.state_dict().items()] == expected


@pytest.fixture(scope="module")
def small_net(small_card, small_weights):
    net = build_net(small_card.architecture, small_card.arch_params).eval()
    load_checkpoint_file(net, small_weights)
    return net


def test_small_model_heatmaps_match_fp64_reference(fixtures_dir, small_net):
    io = np.load(fixtures_dir / "small_model_io.npz")
    with torch.inference_mode():
        out = small_net(torch.from_numpy(io["input"])).numpy()
        out_f = small_net(torch.from_numpy(np.ascontiguousarray(io["input"][..., ::-1]))).numpy()
    np.testing.assert_allclose(out, io["heatmaps_fp64"], atol=1e-4, rtol=0)
    np.testing.assert_allclose(out_f, io["heatmaps_flipped_input_fp64"], atol=1e-4, rtol=0)


def test_small_model_activation_stats(fixtures_dir, small_net):
    """Intermediate activations (float64 forward) match the official statistics, module by module."""
    stats = json.loads((fixtures_dir / "small_model_activation_stats.json").read_text())
    io = np.load(fixtures_dir / "small_model_io.npz")
    net = small_net.double()
    captured: dict[str, list[torch.Tensor]] = {}

    def hook(name):
        def fn(_m, _inp, out):
            outs = out if isinstance(out, list) else [out]
            captured[name] = [o.detach().clone() for o in outs]

        return fn

    handles = []
    for name in {s["module"] for s in stats}:
        mod = net.get_submodule(name.replace("[", ".").replace("]", ""))
        handles.append(mod.register_forward_hook(hook(name)))
    try:
        with torch.inference_mode():
            net(torch.from_numpy(io["input"]).double())
    finally:
        for h in handles:
            h.remove()
        net.float()
    for s in stats:
        t = captured[s["module"]][s.get("branch") or 0]
        assert list(t.shape) == list(s["shape"]), s["module"]
        np.testing.assert_allclose(t.flatten()[:8].numpy(), s["first8"], atol=1e-5, err_msg=s["module"])
        a = t.numpy()
        assert a.mean() == pytest.approx(s["mean"], abs=1e-6), s["module"]
        assert a.std(ddof=1) == pytest.approx(s["std"], rel=1e-6, abs=1e-7), s["module"]
        assert np.abs(a).mean() == pytest.approx(s["abs_mean"], rel=1e-5, abs=1e-6), s["module"]


def test_small_model_heatmaps_on_every_backend(fixtures_dir, backend_estimator):
    """The backend's forward (ONNX Runtime / OpenVINO / torch) against the official fp64 heatmaps, 1e-4."""
    io = np.load(fixtures_dir / "small_model_io.npz")
    out = backend_estimator.forward(torch.from_numpy(io["input"])).numpy()
    out_f = backend_estimator.forward(torch.from_numpy(np.ascontiguousarray(io["input"][..., ::-1]))).numpy()
    np.testing.assert_allclose(out, io["heatmaps_fp64"], atol=1e-4, rtol=0)
    np.testing.assert_allclose(out_f, io["heatmaps_flipped_input_fp64"], atol=1e-4, rtol=0)
