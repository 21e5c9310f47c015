"""The argmax codec: integer maxima, no sub-pixel refinement (for comparison studies)."""

from __future__ import annotations

import torch
from torch import Tensor

from .common import get_heatmap_maximum


def argmax_decode(heatmaps: Tensor) -> tuple[Tensor, Tensor]:
    """Plain integer argmax (no sub-pixel refinement), for comparison studies."""
    return get_heatmap_maximum(heatmaps.to(torch.float32))
