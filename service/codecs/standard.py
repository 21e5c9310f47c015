"""The standard (HRNet-official) codec's decoding: argmax plus a quarter-pixel offset."""

from __future__ import annotations

import torch
from torch import Tensor

from .common import get_heatmap_maximum


def quarter_offset_decode(heatmaps: Tensor) -> tuple[Tensor, Tensor]:
    """HRNet-official decode: argmax, then ±0.25 px towards the higher neighbour where ``1 < x < W-1``
    and ``1 < y < H-1`` (on the raw map).

    Returns:
        coords ``(N, K, 2)`` float32 heatmap px and scores ``(N, K)`` float32.
    """
    heatmaps = heatmaps.to(torch.float32)
    n, k, h, w = heatmaps.shape
    coords, maxvals = get_heatmap_maximum(heatmaps)
    px = torch.floor(coords[..., 0] + 0.5).to(torch.long)
    py = torch.floor(coords[..., 1] + 0.5).to(torch.long)
    inside = (px > 1) & (px < w - 1) & (py > 1) & (py < h - 1)
    cx = px.clamp(1, max(w - 2, 1))
    cy = py.clamp(1, max(h - 2, 1))
    flat = heatmaps.reshape(n, k, h * w)

    def at(dy: int, dx: int) -> Tensor:
        return torch.gather(flat, 2, ((cy + dy) * w + (cx + dx)).unsqueeze(-1)).squeeze(-1)

    diff = torch.stack([at(0, 1) - at(0, -1), at(1, 0) - at(-1, 0)], dim=-1)
    step = torch.sign(diff) * 0.25
    return torch.where(inside.unsqueeze(-1), coords + step, coords), maxvals
