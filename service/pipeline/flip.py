"""Flip test: one 2N forward over ``[crops, mirrored crops]``, then flip back and average."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor


def flip_back(heatmaps: Tensor, permutation: Sequence[int], shift: bool = False) -> Tensor:
    """Map heatmaps of width-mirrored inputs back to the original frame.

    Args:
        heatmaps: ``(N, K, H, W)`` network output on mirrored crops.
        permutation: ``(K,)`` channel permutation swapping left/right joints.
        shift: HRNet-official ``SHIFT_HEATMAP``: shift one pixel right, column 0 keeps its value.

    Returns:
        ``(N, K, H, W)``.
    """
    perm = torch.as_tensor(list(permutation), device=heatmaps.device)
    out = heatmaps.index_select(1, perm).flip(-1)
    if shift:
        out = torch.cat([out[..., :1], out[..., :-1]], dim=-1)
    return out


def merge_flip(heatmaps: Tensor, flipped: Tensor, permutation: Sequence[int], shift: bool = False) -> Tensor:
    """``(heatmaps + flip_back(flipped)) * 0.5`` in float32 (DarkPose: no shift)."""
    return (heatmaps.float() + flip_back(flipped.float(), permutation, shift)) * 0.5
