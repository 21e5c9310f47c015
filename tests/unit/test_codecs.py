"""Codec properties from independent maths: round trip, quarter offsets, masking, safeguard."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from service.codecs import HeatmapCodec
from service.codecs.functional import (
    dark_decode,
    get_heatmap_maximum,
    quantised_gaussian_targets,
    quarter_offset_decode,
    unbiased_gaussian_targets,
)
from tests.unit.maps import mixed_maps


def test_dark_round_trip_subpixel_64x48():
    """Encode sub-pixel keypoints with unbiased Gaussians (sigma 2), decode with DARK: error < 0.01 px.

    Points stay 8 px from the border: closer in, the zero-padded modulation blur truncates the Gaussian
    and the log-quadratic model no longer holds exactly (0.05 px at 4 px from the edge)."""
    rng = np.random.default_rng(0)
    n, k = 64, 17
    pts = torch.from_numpy(np.stack([rng.uniform(8, 40, (n, k)), rng.uniform(8, 56, (n, k))], -1))
    target, weight = unbiased_gaussian_targets(pts, torch.ones(n, k), (48, 64), 2.0)
    assert bool((weight == 1).all())
    coords, scores = dark_decode(target, 11)
    err = (coords.double() - pts).norm(dim=-1)
    assert float(err.max()) < 0.01, float(err.max())
    assert torch.allclose(scores, target.amax(dim=(2, 3)))


def test_standard_round_trip_is_quantised():
    """Quantised targets + quarter offset: error bounded by ~0.5 px and clearly worse than DARK."""
    rng = np.random.default_rng(1)
    pts = torch.from_numpy(np.stack([rng.uniform(4, 44, (32, 17)), rng.uniform(4, 60, (32, 17))], -1))
    t, _ = quantised_gaussian_targets(pts, torch.ones(32, 17), (48, 64), 2.0)
    coords, _ = quarter_offset_decode(t)
    err = (coords.double() - pts).abs()
    # integer centre → exact symmetric peak → neighbours equal → sign 0 → no offset
    assert float(err.max()) <= 0.5 + 1e-6
    assert float(err.mean()) > 0.1


def test_quarter_offset_direction():
    hm = torch.zeros(1, 1, 10, 10)
    hm[0, 0, 5, 5] = 1.0
    hm[0, 0, 5, 6] = 0.5  # right neighbour higher than left
    hm[0, 0, 4, 5] = 0.3  # upper neighbour higher than lower
    coords, _ = quarter_offset_decode(hm)
    assert coords[0, 0].tolist() == [5.25, 4.75]


def test_argmax_first_occurrence_and_mask():
    hm = torch.zeros(1, 3, 4, 5)
    hm[0, 0, 1, 3] = 2.0
    hm[0, 0, 2, 1] = 2.0  # later in row-major order: loses the tie
    hm[0, 1] = -1.0  # all negative → masked to (0, 0)
    hm[0, 2, 3, 4] = float("nan")
    coords, maxvals = get_heatmap_maximum(hm)
    assert coords[0, 0].tolist() == [3.0, 1.0]
    assert coords[0, 1].tolist() == [0.0, 0.0] and maxvals[0, 1] == -1.0
    assert coords[0, 2].tolist() == [0.0, 0.0]


def test_all_zero_plane_decodes_to_origin():
    coords, maxvals = dark_decode(torch.zeros(2, 17, 64, 48), 11)
    assert torch.equal(coords, torch.zeros(2, 17, 2)) and torch.equal(maxvals, torch.zeros(2, 17))


def test_safeguard_caps_offsets():
    torch.manual_seed(0)
    noise = torch.rand(4, 17, 64, 48)
    plain, _ = dark_decode(noise, 11)
    argmax, _ = get_heatmap_maximum(noise)
    guarded, _ = dark_decode(noise, 11, max_offset=0.5)
    assert float((guarded - argmax).abs().max()) <= 0.5 + 1e-6
    assert float((plain - argmax).abs().max()) > 0.5  # the official decoder is unbounded


@pytest.mark.parametrize("name", ["dark", "standard", "argmax"])
def test_codec_object(name):
    codec = HeatmapCodec(name, 11, 2.0)
    pts = torch.tensor([[[20.3, 30.7]]], dtype=torch.float64)
    t, w = codec.encode(pts, torch.ones(1, 1), (48, 64))
    coords, _ = codec.decode(t)
    assert coords.shape == (1, 1, 2) and w.shape == (1, 1)
    assert float((coords.double() - pts).abs().max()) <= 0.75


def test_unknown_codec():
    with pytest.raises(ValueError, match="unknown codec"):
        HeatmapCodec("nope").decode(torch.zeros(1, 1, 8, 8))


@pytest.mark.parametrize("ksize", [3, 11, 17])
def test_local_decoder_equals_literal_full_plane_decoder(ksize):
    """The torch path (GPUs; 5×5 local blur + certified rescale maximum, full-plane fallback) gives the same
    coordinates as the literal DarkPose decode in torch on Gaussian, noisy, multi-peak, flat, negative and border
    maps. The NumPy CPU path has the same check in ``test_dark_numpy.py``."""
    from service.codecs.functional import dark_decode_exact, dark_decode_torch

    hm = mixed_maps(ksize)
    fast, s1 = dark_decode_torch(hm, ksize)
    exact, s2 = dark_decode_exact(hm, ksize)
    assert torch.equal(s1, s2)
    diff = (fast - exact).abs().amax(-1)
    assert float((diff == 0).float().mean()) > 0.99
    # the rare differences are float64 summation-order ulps in ill-conditioned Taylor steps
    argmax, _ = get_heatmap_maximum(hm)
    close = diff <= 1e-3
    assert bool(close.all()) or bool(((fast - argmax).abs().amax(-1)[~close] > 1).all())
