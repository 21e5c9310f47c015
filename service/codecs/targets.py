"""Training targets (encoding): DARK's unbiased Gaussians and HRNet's quantised ones, batched."""

from __future__ import annotations

import torch
from torch import Tensor


def unbiased_gaussian_targets(
    keypoints: Tensor, visible: Tensor, heatmap_size: tuple[int, int], sigma: float
) -> tuple[Tensor, Tensor]:
    """DARK unbiased encoding (DarkPose ``generate_target``): a full-plane Gaussian at the sub-pixel location.

    Args:
        keypoints: ``(N, K, 2)`` heatmap-space ``(x, y)`` (already mapped by the heatmap affine).
        visible: ``(N, K)`` visibility (> 0 means labelled).
        heatmap_size: ``(W, H)``.
        sigma: Gaussian sigma in heatmap px.

    Returns:
        targets ``(N, K, H, W)`` float32 and weights ``(N, K)`` float32; the weight is 0 for unlabelled
        joints and when the 3σ box lies entirely outside the heatmap (``int`` truncates toward zero).
    """
    w, h = heatmap_size
    mu = keypoints.to(torch.float64)
    weight = visible.to(torch.float32).clone()
    tmp = sigma * 3
    ul = torch.trunc(mu - tmp)
    br = torch.trunc(mu + tmp + 1)
    outside = (ul[..., 0] >= w) | (ul[..., 1] >= h) | (br[..., 0] < 0) | (br[..., 1] < 0)
    weight = torch.where(outside, torch.zeros_like(weight), weight)
    xs = torch.arange(w, dtype=torch.float32, device=keypoints.device)
    ys = torch.arange(h, dtype=torch.float32, device=keypoints.device)
    mu32 = mu.to(torch.float32)
    dx2 = (xs.view(1, 1, 1, w) - mu32[..., 0, None, None]) ** 2
    dy2 = (ys.view(1, 1, h, 1) - mu32[..., 1, None, None]) ** 2
    target = torch.exp(-(dx2 + dy2) / float(2 * sigma**2))
    target = torch.where((weight > 0.5)[..., None, None], target, torch.zeros_like(target))
    return target, weight


def quantised_gaussian_targets(
    keypoints: Tensor, visible: Tensor, heatmap_size: tuple[int, int], sigma: float
) -> tuple[Tensor, Tensor]:
    """HRNet-official (biased) encoding: the centre is rounded to the nearest heatmap pixel and the
    Gaussian is pasted into a ``(6σ+1)²`` window.

    Args / Returns: as :func:`unbiased_gaussian_targets` (keypoints in heatmap px; HRNet computes the same
    centres as ``int(joint / stride + 0.5)``).
    """
    w, h = heatmap_size
    tmp = sigma * 3
    mu = torch.trunc(keypoints.to(torch.float64) + 0.5)
    weight = visible.to(torch.float32).clone()
    ul = torch.trunc(mu - tmp)
    br = torch.trunc(mu + tmp + 1)
    outside = (ul[..., 0] >= w) | (ul[..., 1] >= h) | (br[..., 0] < 0) | (br[..., 1] < 0)
    weight = torch.where(outside | (weight <= 0), torch.zeros_like(weight), weight)
    xs = torch.arange(w, dtype=torch.float64, device=keypoints.device).view(1, 1, 1, w)
    ys = torch.arange(h, dtype=torch.float64, device=keypoints.device).view(1, 1, h, 1)
    dx = xs - mu[..., 0, None, None]
    dy = ys - mu[..., 1, None, None]
    window = (dx.abs() <= tmp) & (dy.abs() <= tmp)
    g = torch.exp(-(dx**2 + dy**2) / (2 * sigma**2)).to(torch.float32)
    target = torch.where(window & (weight > 0.5)[..., None, None], g, torch.zeros_like(g))
    return target, weight
