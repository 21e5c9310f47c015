"""DARK and HRNet decoding against the official ``get_final_preds`` outputs (three heatmap sizes)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from service.codecs.functional import (
    dark_blur,
    dark_decode,
    dark_decode_torch,
    get_heatmap_maximum,
    quarter_offset_decode,
)
from service.pipeline.geometry import affine_matrices, apply_affine

CASES = ["decode_cases.npz", "decode_cases_96x72.npz", "decode_cases_32x24_k3.npz"]


@pytest.fixture(scope="module", params=CASES)
def case(request, fixtures_dir):
    return np.load(fixtures_dir / request.param)


def _to_image(coords, d, convention="darkpose"):
    h, w = d["heatmaps"].shape[2:]
    inv = affine_matrices(d["center"], d["scale"], (w, h), inv=True, convention=convention)
    return apply_affine(coords, inv).astype(np.float32)


def test_argmax_and_scores_bit_exact(case):
    coords, maxvals = get_heatmap_maximum(torch.from_numpy(case["heatmaps"]))
    np.testing.assert_array_equal(coords.numpy(), case["dark_coords_argmax"])
    np.testing.assert_array_equal(maxvals.numpy(), case["dark_maxvals"][..., 0])


def test_blur_matches_including_nan_planes(case):
    blurred = dark_blur(torch.from_numpy(case["heatmaps"]), int(case["blur_kernel"])).numpy()
    ref = case["dark_blurred"]
    np.testing.assert_array_equal(np.isnan(blurred), np.isnan(ref))
    ok = ~np.isnan(ref)
    np.testing.assert_allclose(blurred[ok], ref[ok], atol=1e-6, rtol=0)


@pytest.mark.parametrize("decoder", [dark_decode, dark_decode_torch], ids=["cpu-numpy", "torch"])
def test_dark_preds_match_official(case, decoder):
    coords, maxvals = decoder(torch.from_numpy(case["heatmaps"]), int(case["blur_kernel"]))
    preds = _to_image(coords.numpy(), case)
    ref = case["dark_preds"]
    err = np.abs(preds - ref).max(-1)
    wc, applied = case["diag_well_conditioned"], case["diag_taylor_applied"]
    assert wc.sum() > 0 and (~applied).sum() > 0
    assert err[wc].max() <= 1e-3, f"well-conditioned joints off by {err[wc].max()} px"
    assert err[~applied].max() <= 1e-4
    # ill-conditioned Taylor steps are round-off sensitive: loose bound only
    np.testing.assert_allclose(coords.numpy()[applied & ~wc], case["dark_coords_hm"][applied & ~wc], atol=0.1)
    np.testing.assert_array_equal(maxvals.numpy(), case["dark_maxvals"][..., 0])


def test_hrnet_quarter_offset_matches_official(case):
    coords, maxvals = quarter_offset_decode(torch.from_numpy(case["heatmaps"]))
    np.testing.assert_array_equal(coords.numpy(), case["hrnet_coords_hm"])
    np.testing.assert_allclose(
        _to_image(coords.numpy(), case, "hrnet"), case["hrnet_preds"], atol=1e-4, rtol=0
    )
    np.testing.assert_array_equal(maxvals.numpy(), case["hrnet_maxvals"][..., 0])


@pytest.mark.parametrize("decoder", [dark_decode, dark_decode_torch], ids=["cpu-numpy", "torch"])
def test_safeguard_only_changes_large_offsets(case, decoder):
    hm = torch.from_numpy(case["heatmaps"])
    k = int(case["blur_kernel"])
    plain, _ = decoder(hm, k)
    guarded, _ = decoder(hm, k, max_offset=1.0)
    argmax, _ = get_heatmap_maximum(hm)
    moved = (guarded - argmax).abs()
    assert float(moved.max()) <= 1.0 + 1e-6
    wc = torch.from_numpy(case["diag_well_conditioned"])
    assert torch.equal(guarded[wc], plain[wc])
