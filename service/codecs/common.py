"""What every heatmap codec starts from: the integer argmax and maximum per plane."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def get_heatmap_maximum(heatmaps: Tensor) -> tuple[Tensor, Tensor]:
    """Integer argmax and maximum per plane.

    Args:
        heatmaps: ``(N, K, H, W)``.

    Returns:
        coords ``(N, K, 2)`` float32 ``(x, y)`` of the first maximum in row-major order (``np.argmax``
        semantics: NaN wins), set to ``(0, 0)`` where the maximum is not ``> 0`` (NaN included), and scores
        ``(N, K)`` float32 (the raw maxima). On CPU NumPy's SIMD argmax is used (several times faster than
        ``torch.argmax`` there).
    """
    n, k, h, w = heatmaps.shape
    flat = heatmaps.reshape(n, k, h * w)
    if heatmaps.device.type == "cpu":
        a = flat.detach().numpy()
        idx_np = np.argmax(a, axis=2)
        idx = torch.from_numpy(idx_np)
        # the value at the first maximum is the maximum (and NaN when the plane has one, like np.amax)
        maxvals = torch.from_numpy(np.take_along_axis(a, idx_np[..., None], axis=2)[..., 0])
    else:
        idx = flat.argmax(dim=2)
        maxvals = flat.amax(dim=2)
    coords = torch.stack([idx % w, torch.div(idx, w, rounding_mode="floor")], dim=-1).to(torch.float32)
    coords = torch.where((maxvals > 0).unsqueeze(-1), coords, torch.zeros_like(coords))
    return coords, maxvals.to(torch.float32)
