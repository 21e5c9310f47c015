"""Synthetic heatmaps shared by the decoder property tests."""

from __future__ import annotations

import torch


def mixed_maps(seed: int, n: int = 24, k: int = 17, h: int = 64, w: int = 48) -> torch.Tensor:
    """``(n, k, h, w)`` float32: Gaussians (σ 1–3, centres also off the plane), noisy, two-peak, pure negative
    noise and nearly flat maps, mixed per joint."""
    g = torch.Generator().manual_seed(seed)
    ys = torch.arange(h).view(1, 1, h, 1).float()
    xs = torch.arange(w).view(1, 1, 1, w).float()
    cx = torch.rand(n, k, 1, 1, generator=g) * (w + 8) - 4
    cy = torch.rand(n, k, 1, 1, generator=g) * (h + 8) - 4
    sig = 1 + 2 * torch.rand(n, k, 1, 1, generator=g)
    hm = torch.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2 * sig**2))
    kind = torch.randint(0, 5, (n, k, 1, 1), generator=g)
    noise = torch.rand(n, k, h, w, generator=g)
    hm = torch.where(kind == 1, hm + 0.2 * noise, hm)  # noisy
    hm = torch.where(kind == 2, hm + 0.9 * torch.roll(hm, shifts=(7, 9), dims=(2, 3)), hm)  # second peak
    hm = torch.where(kind == 3, noise - 0.5, hm)  # pure noise, negative values
    return torch.where(kind == 4, hm * 0.001 + 0.3, hm)  # nearly flat
