"""Flip test: flip-back, DarkPose average (no shift), HRNet shifted variant, decode of the average."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from service.codecs.functional import dark_blur, dark_decode, dark_taylor, get_heatmap_maximum
from service.pipeline.flip import flip_back, merge_flip
from service.pipeline.geometry import affine_matrices, apply_affine
from service.zoo.keypoints import COCO17


@pytest.fixture(scope="module")
def flip(fixtures_dir):
    return np.load(fixtures_dir / "flip_cases.npz")


def _perm(pairs, k=17):
    perm = list(range(k))
    for a, b in pairs:
        perm[a], perm[b] = b, a
    return perm


def test_pairs_are_coco(flip):
    assert [tuple(p) for p in flip["flip_pairs"].tolist()] == list(COCO17.flip_pairs)


def test_flip_back_and_average_bit_exact(flip):
    perm = _perm(flip["flip_pairs"].tolist())
    fb = flip_back(torch.from_numpy(flip["heatmaps_flipped_input"]), perm).numpy()
    np.testing.assert_array_equal(fb, flip["flipped_back"])
    avg = merge_flip(
        torch.from_numpy(flip["heatmaps"]), torch.from_numpy(flip["heatmaps_flipped_input"]), perm
    ).numpy()
    np.testing.assert_array_equal(avg, flip["averaged"])


def test_hrnet_shift_variant_bit_exact(flip):
    perm = _perm(flip["flip_pairs"].tolist())
    fb = flip_back(torch.from_numpy(flip["heatmaps_flipped_input"]), perm, shift=True).numpy()
    np.testing.assert_array_equal(fb, flip["hrnet_flipped_back_shifted"])
    avg = merge_flip(
        torch.from_numpy(flip["heatmaps"]), torch.from_numpy(flip["heatmaps_flipped_input"]), perm, shift=True
    ).numpy()
    np.testing.assert_array_equal(avg, flip["hrnet_averaged"])


def test_decode_of_average(flip):
    hm = torch.from_numpy(flip["averaged"])
    coords, maxvals = dark_decode(hm, 11)
    h, w = hm.shape[2:]
    inv = affine_matrices(flip["center"], flip["scale"], (w, h), inv=True)
    preds = apply_affine(coords.numpy(), inv).astype(np.float32)
    np.testing.assert_array_equal(maxvals.numpy(), flip["averaged_dark_maxvals"][..., 0])
    # classify joints with our own Taylor diagnostics: well-conditioned = applied, negative definite, |offset| <= 1
    argmax, _ = get_heatmap_maximum(hm)
    logs = torch.log(torch.clamp_min(dark_blur(hm, 11), 1e-10))
    step = dark_taylor(logs, argmax)
    wc = (step.applied & (step.dxx < 0) & (step.det > 0) & (step.offset.abs().amax(-1) <= 1)).numpy()
    err = np.abs(preds - flip["averaged_dark_preds"]).max(-1)
    assert wc.any()
    assert err[wc].max() <= 1e-3
    assert err[~step.applied.numpy()].max(initial=0) <= 1e-4
