"""DARK unbiased encoding (training targets) against ``generate_target``."""

from __future__ import annotations

import numpy as np
import torch

from service.codecs.functional import unbiased_gaussian_targets
from service.pipeline.geometry import get_affine_transform


def test_unbiased_targets(fixtures_dir):
    e = np.load(fixtures_dir / "encode_cases.npz")
    hm_h, hm_w = e["target"].shape[2:]
    vis = e["joints_vis"][..., 0]
    mapped = np.zeros_like(e["joints"][..., :2])
    for n in range(len(vis)):
        m = get_affine_transform(e["center"][n], e["scale"][n], float(e["rot"][n]), (hm_w, hm_h))
        pts = e["joints"][n, :, :2] @ m[:, :2].T + m[:, 2]
        mapped[n] = np.where(vis[n, :, None] > 0, pts, e["joints"][n, :, :2])
    np.testing.assert_allclose(mapped[vis > 0], e["joints_heatmap"][..., :2][vis > 0], atol=1e-4)
    target, weight = unbiased_gaussian_targets(
        torch.from_numpy(e["joints_heatmap"][..., :2]), torch.from_numpy(vis), (hm_w, hm_h), float(e["sigma"])
    )
    np.testing.assert_array_equal(weight.numpy(), e["target_weight"][..., 0])
    np.testing.assert_allclose(target.numpy(), e["target"], atol=1e-6, rtol=0)
