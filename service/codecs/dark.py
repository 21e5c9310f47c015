"""The DARK codec's decoding (Zhang et al., CVPR 2020), as pure, batched torch functions (no loop over
persons or joints).

Shape vocabulary: N instances, K keypoints, heatmap size ``[W, H]``; heatmaps are ``(N, K, H, W)``
float32 on any device; coordinates are ``(x, y)`` in heatmap pixels (pixel centres at integers).

The DARK functions reproduce ``lib/core/inference.py`` of ilovepose/DarkPose under numpy 1.x (the era of
the official code), including its precision: the argmax and scores on the raw map, a zero-padded blur
computed in float64, float32 max-rescaling and log, and the Taylor step whose first derivatives and mixed
derivative are float32 differences while the second derivatives, determinant test and 2×2 inverse are
float64.

``dark_decode`` hands CPU tensors to the NumPy kernel of :mod:`service.codecs.dark_numpy` (same method, several
times faster on one core) and runs :func:`dark_decode_torch` on other devices.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import cv2
import numpy as np
import torch
from torch import Tensor

from .common import get_heatmap_maximum
from .dark_numpy import STENCIL, dark_decode_np, lu2x2_inverse


@functools.lru_cache(maxsize=16)
def _opencv_gaussian_taps(ksize: int) -> tuple[float, ...]:
    """OpenCV's 1-D kernel for ``GaussianBlur(ksize, sigma=0)``: fixed tables for odd ``ksize <= 7``,
    else ``sigma = 0.3*((ksize-1)*0.5 - 1) + 0.8`` (ksize 11 → σ = 2)."""
    if ksize < 1 or ksize % 2 == 0:
        raise ValueError(f"blur kernel must be a positive odd integer, got {ksize}")
    return tuple(float(v) for v in cv2.getGaussianKernel(ksize, 0, ktype=cv2.CV_64F).ravel())


def gaussian_taps(ksize: int, device: torch.device | str = "cpu") -> Tensor:
    """``(ksize,)`` float64 tensor of OpenCV's sigma-from-ksize Gaussian taps."""
    return torch.tensor(_opencv_gaussian_taps(ksize), dtype=torch.float64, device=device)


def dark_blur(heatmaps: Tensor, ksize: int) -> Tensor:
    """DarkPose ``gaussian_blur``: zero-padded separable Gaussian (float64), then rescale to the raw max.

    Args:
        heatmaps: ``(N, K, H, W)`` float32.
        ksize: odd blur kernel size (``TEST.BLUR_KERNEL``).

    Returns:
        ``(N, K, H, W)`` float32, each plane multiplied by ``raw_max / blurred_max`` (computed in float32).
        All-zero planes become NaN (0/0), exactly like the official code; their joints are masked anyway.
    """
    n, k, h, w = heatmaps.shape
    # Zero padding of b pixels on each side makes OpenCV's border mode irrelevant: a same-size separable
    # convolution with zeros outside, i.e. multiplication by banded (Toeplitz) matrices: rows, then columns.
    kx = _band_matrix(w, ksize, heatmaps.device)  # (W, W): out[:, j] = sum_c x[:, c] * kx[c, j]
    ky = _band_matrix(h, ksize, heatmaps.device).T  # (H, H)
    x = heatmaps.to(torch.float64).reshape(n * k, h, w)
    x = torch.matmul(ky, torch.matmul(x, kx))
    blurred = x.reshape(n, k, h, w).to(torch.float32)
    origin_max = heatmaps.to(torch.float32).amax(dim=(2, 3), keepdim=True)
    blurred_max = blurred.amax(dim=(2, 3), keepdim=True)
    return blurred * (origin_max / blurred_max)


def _band_matrix(size: int, ksize: int, device: torch.device | str) -> Tensor:
    """``(size, size)`` float64 matrix ``M[c, j] = taps[c - j + b]`` (zero outside the band): ``x @ M`` is the
    zero-padded same-size 1-D convolution of the rows of ``x``."""
    taps = gaussian_taps(ksize, device)
    b = (ksize - 1) // 2
    c = torch.arange(size, device=device)
    d = c.view(-1, 1) - c.view(1, -1) + b
    ok = (d >= 0) & (d < ksize)
    return torch.where(ok, taps[d.clamp(0, ksize - 1)], torch.zeros((), dtype=torch.float64, device=device))


def _local_blur(heatmaps: Tensor, coords: Tensor, ksize: int, radius: int) -> tuple[Tensor, Tensor, Tensor]:
    """Blurred values (float64, zero-padded, the taps of :func:`dark_blur`) on the ``(2·radius+1)²`` grid
    around each integer maximum, from a ``(2·(radius+b)+1)²`` raw patch instead of the whole plane.

    Returns the grid ``(N, K, S, S)`` float64 indexed ``[dy+radius, dx+radius]``, an ``(N, K, S, S)`` mask
    of grid positions that lie inside the plane, and the raw float64 patch (zeros outside the plane).
    """
    n, k, h, w = heatmaps.shape
    dev = heatmaps.device
    b = (ksize - 1) // 2
    r = radius + b
    side = 2 * r + 1
    px = coords[..., 0].to(torch.long)
    py = coords[..., 1].to(torch.long)
    off = torch.arange(-r, r + 1, device=dev)
    ys = py[..., None, None] + off.view(1, 1, side, 1)
    xs = px[..., None, None] + off.view(1, 1, 1, side)
    inside = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
    idx = (ys.clamp(0, h - 1) * w + xs.clamp(0, w - 1)).reshape(n, k, side * side)
    patch = torch.gather(heatmaps.reshape(n, k, h * w), 2, idx).reshape(n, k, side, side)
    patch = patch.masked_fill(~inside, 0.0).to(torch.float64)
    taps = gaussian_taps(ksize, dev)
    out = 2 * radius + 1
    # tx[c, j]: weight of patch column c for grid column j, which sits at patch column b + j
    c = torch.arange(side, device=dev).view(-1, 1)
    j = torch.arange(out, device=dev).view(1, -1)
    d = c - j
    ok = (d >= 0) & (d < ksize)
    tx = torch.where(ok, taps[d.clamp(0, ksize - 1)], torch.zeros((), dtype=torch.float64, device=dev))
    grid = torch.matmul(tx.T, torch.matmul(patch, tx))  # rows, then columns, as OpenCV's separable filter
    grid_inside = inside[..., b : b + out, b : b + out]
    return grid, grid_inside, patch


def _gather_stencil(values: Tensor, px: Tensor, py: Tensor) -> list[Tensor]:
    """Gather ``values[n, k, py+dy, px+dx]`` for every stencil offset; ``px``/``py`` already clamped."""
    n, k, h, w = values.shape
    flat = values.reshape(n, k, h * w)
    idx = torch.stack([(py + dy) * w + (px + dx) for dy, dx in STENCIL], dim=-1)
    g = torch.gather(flat, 2, idx)
    return list(g.unbind(-1))


class TaylorStep(NamedTuple):
    """Result of :func:`dark_taylor`; ``dxx``/``det`` are NaN-free only where ``applied``."""

    coords: Tensor  # (N, K, 2) float32 refined heatmap coords
    applied: Tensor  # (N, K) bool
    offset: Tensor  # (N, K, 2) float64 (0 where not applied)
    dxx: Tensor  # (N, K) float64
    det: Tensor  # (N, K) float64 Hessian determinant


def dark_taylor(log_heatmaps: Tensor, coords: Tensor, max_offset: float | None = None) -> TaylorStep:
    """Second-order Taylor refinement of integer maxima on log-heatmaps (DarkPose ``taylor``).

    Applied where ``2 <= x <= W-3`` and ``2 <= y <= H-3`` and ``det(Hessian) != 0`` (exact test), with
    2-px second differences. **No safeguard** by default, as in the official code: offsets can be huge on
    non-Gaussian maps. ``max_offset`` (heatmap px, off by default) discards refinements whose offset
    exceeds it on either axis and keeps the integer maximum instead.

    Args:
        log_heatmaps: ``(N, K, H, W)`` float32, ``log(max(blurred, 1e-10))``.
        coords: ``(N, K, 2)`` float32 integer maxima (masked ones at ``(0, 0)``).
        max_offset: optional safeguard in heatmap pixels.

    Returns:
        a :class:`TaylorStep`: refined coords ``(N, K, 2)`` float32, the ``applied`` mask, the float64
        offsets (zero where not applied), ``dxx`` and the Hessian determinant (for diagnostics).
    """
    n, k, h, w = log_heatmaps.shape
    px = coords[..., 0].to(torch.long)
    py = coords[..., 1].to(torch.long)
    inside = (px > 1) & (px < w - 2) & (py > 1) & (py < h - 2)
    if w < 5 or h < 5:
        zero = torch.zeros(n, k, 2, dtype=torch.float64, device=coords.device)
        nan = torch.full((n, k), float("nan"), dtype=torch.float64, device=coords.device)
        return TaylorStep(coords.clone(), torch.zeros_like(inside), zero, nan, nan)
    cx = px.clamp(2, w - 3)
    cy = py.clamp(2, h - 3)
    c, xp1, xm1, yp1, ym1, xp2, xm2, yp2, ym2, pp, mp, pm, mm = _gather_stencil(log_heatmaps, cx, cy)
    f64 = torch.float64
    # float32 differences promoted to float64 (numpy 1.x: np.float32 - np.float32 stays float32, 0.5 * it is float64)
    dx = 0.5 * (xp1 - xm1).to(f64)
    dy = 0.5 * (yp1 - ym1).to(f64)
    # 2 * np.float32 is float64 under numpy 1.x, so the whole second difference runs in float64
    dxx = 0.25 * ((xp2.to(f64) - 2 * c.to(f64)) + xm2.to(f64))
    dyy = 0.25 * ((yp2.to(f64) - 2 * c.to(f64)) + ym2.to(f64))
    # the mixed derivative is a chain of float32 operations, promoted only by the final 0.25 *
    dxy = 0.25 * (((pp - mp) - pm) + mm).to(f64)
    det = dxx * dyy - dxy**2
    i00, i01, i10, i11 = lu2x2_inverse(dxx, dxy, dyy, torch.where)
    ox = -i00 * dx + -i01 * dy
    oy = -i10 * dx + -i11 * dy
    applied = inside & (det != 0)
    if max_offset is not None:
        applied = applied & (ox.abs() <= max_offset) & (oy.abs() <= max_offset)
    offset = torch.stack([ox, oy], dim=-1)
    offset = torch.where(applied.unsqueeze(-1), offset, torch.zeros_like(offset))
    refined = (coords.to(f64) + offset).to(torch.float32)
    refined = torch.where(applied.unsqueeze(-1), refined, coords)
    return TaylorStep(refined, applied, offset, dxx, det)


def dark_decode(
    heatmaps: Tensor, blur_kernel: int = 11, max_offset: float | None = None
) -> tuple[Tensor, Tensor]:
    """Full DARK decode in heatmap space: argmax → blur → log → Taylor.

    CPU tensors take the NumPy kernel :func:`service.codecs.dark_numpy.dark_decode_np` (same maths, several
    times faster on one core); other devices take :func:`dark_decode_torch`. Both are exact (identical
    coordinates to the literal full-plane decode up to float64 summation order) and parity-tested.

    Args:
        heatmaps: ``(N, K, H, W)`` float32 (flip-averaged network output).
        blur_kernel: modulation kernel size (11 for 256×192 and 384×288, 3 for DarkPose's 128×96 W32).
        max_offset: optional safeguard (heatmap px); ``None`` reproduces the official decoder.

    Returns:
        coords ``(N, K, 2)`` float32 heatmap px and scores ``(N, K)`` float32 (raw maxima), on the input's
        device.
    """
    if heatmaps.device.type != "cpu":
        return dark_decode_torch(heatmaps, blur_kernel, max_offset)
    n, k, h, w = heatmaps.shape
    planes = heatmaps.detach().to(torch.float32).contiguous().numpy().reshape(n * k, h, w)
    coords, maxvals = dark_decode_np(planes, blur_kernel, max_offset)
    return torch.from_numpy(coords).reshape(n, k, 2), torch.from_numpy(maxvals).reshape(n, k)


def dark_decode_torch(
    heatmaps: Tensor, blur_kernel: int = 11, max_offset: float | None = None
) -> tuple[Tensor, Tensor]:
    """:func:`dark_decode` in torch ops on the heatmaps' device (the path for GPUs; also runs on CPU).

    Same arguments and results as :func:`dark_decode`.
    """
    heatmaps = heatmaps.to(torch.float32)
    coords, maxvals = get_heatmap_maximum(heatmaps)
    n, k, h, w = heatmaps.shape
    if h < 5 or w < 5 or n * k == 0:
        return coords, maxvals
    dev = heatmaps.device
    b = (blur_kernel - 1) // 2
    core = 3
    # Local exact path. The official decoder blurs the whole plane (float64), rescales it by
    # r = raw_max / max(blurred) (float32), floors at 1e-10 and takes logs; the Taylor step then reads the 5×5
    # neighbourhood of the maximum. We blur exactly only that 5×5 grid G (from a raw patch of radius 2 + b).
    # r needs the plane's blurred maximum, which equals max(G) whenever no position outside G can exceed it;
    # for such a position x (Chebyshev distance >= 3 from the peak) a zero-padded normalised blur gives
    #   blurred(x) <= (blur of the raw 7×7 core C)(x) + far · (1 - kernel mass that x's window puts on C),
    # where far bounds the raw values outside C (>= 0). That bound is evaluated on the ring of positions whose
    # window reaches C; farther out it is just far. Planes where max(G) does not dominate the bound (noise,
    # several peaks) take the literal full-plane path, so the result is the same either way.
    grid, _, patch = _local_blur(heatmaps, coords, blur_kernel, 2)
    # Only joints inside the Taylor bounds use r, and their 5×5 grid lies inside the plane: no masking needed.
    local_max = grid.flatten(2).amax(-1)  # (N, K) float64: max of the exact 5×5 blurred grid
    far = _max_outside_box(heatmaps, coords, core).clamp_min(0.0)
    c0 = 2 + b - core
    core_patch = patch[..., c0 : c0 + 2 * core + 1, c0 : c0 + 2 * core + 1].to(
        torch.float32
    )  # zeros off-plane
    ring_blur, ring_mass = _core_blur(core_patch, blur_kernel, core)  # (N, K, S, S), (S, S); S = 2(core+b)+1
    # The bound is only a certificate: float32 is enough with a margin above its round-off, and ring positions
    # off the plane may be included (a bound over more positions is still a bound).
    bound = (ring_blur + far[..., None, None] * (1.0 - ring_mass)).masked_fill(
        _ring_mask(core + b, 2, dev), float("-inf")
    )
    outside_max = torch.maximum(bound.flatten(2).amax(-1), far).to(torch.float64)
    outside_max = outside_max + outside_max.abs() * 1e-5
    inside = (coords[..., 0] > 1) & (coords[..., 0] < w - 2) & (coords[..., 1] > 1) & (coords[..., 1] < h - 2)
    local_ok = (local_max >= outside_max) & (local_max > 0) & torch.isfinite(local_max)
    grid32 = grid.to(torch.float32)
    ratio = maxvals / local_max.to(torch.float32)  # float32, as the official origin_max / max(blurred)
    stencil = grid32 * ratio[..., None, None]
    logs_local = torch.log(torch.maximum(stencil, torch.tensor(1e-10, dtype=torch.float32, device=dev)))
    step = dark_taylor(logs_local, torch.full_like(coords, 2.0), max_offset)
    use = inside & local_ok & step.applied
    refined = torch.where(
        use.unsqueeze(-1), (coords.to(torch.float64) + step.offset).to(torch.float32), coords
    )
    fallback = inside & ~local_ok
    if bool(fallback.any()):
        sel = fallback.nonzero(as_tuple=True)
        exact = dark_decode_exact(heatmaps[sel[0], sel[1]].unsqueeze(1), blur_kernel, max_offset)[0][:, 0]
        refined = refined.index_put(sel, exact)
    return refined, maxvals


@functools.lru_cache(maxsize=16)
def _ring_mask(radius: int, inner: int, device: str | torch.device) -> Tensor:
    """``(S, S)`` bool, True on the inner ``(2·inner+1)²`` box (excluded from the ring), S = 2·radius+1."""
    offs = torch.arange(-radius, radius + 1, device=device).abs()
    return (offs.view(-1, 1) <= inner) & (offs.view(1, -1) <= inner)


@functools.lru_cache(maxsize=16)
def _core_taps(ksize: int, core: int, device: str) -> tuple[Tensor, Tensor]:
    """``tx`` ``(2·core+1, S)``: weight of core column ``c`` for ring column ``j`` (``S = 2(core+b)+1``), and the
    kernel mass the window of each ring position puts on the core box, ``(S, S)`` (float32: bound only)."""
    b = (ksize - 1) // 2
    side, out = 2 * core + 1, 2 * (core + b) + 1
    taps = gaussian_taps(ksize, device)
    c = torch.arange(side, device=device).view(-1, 1)
    j = torch.arange(out, device=device).view(1, -1)
    d = j - c
    ok = (d >= 0) & (d < ksize)
    tx = torch.where(ok, taps[d.clamp(0, ksize - 1)], torch.zeros((), dtype=torch.float64, device=device))
    col_mass = tx.sum(0)  # (S,)
    return tx.to(torch.float32), (col_mass.view(-1, 1) * col_mass.view(1, -1)).to(torch.float32)


def _core_blur(core_patch: Tensor, ksize: int, core: int) -> tuple[Tensor, Tensor]:
    """Blur of a ``(2·core+1)²`` raw core (float32, zero elsewhere) on the ``S×S`` grid of positions whose window
    reaches it, plus the kernel mass on the core per position."""
    tx, mass = _core_taps(ksize, core, str(core_patch.device))
    return torch.matmul(tx.T, torch.matmul(core_patch, tx)), mass


def _max_outside_box(heatmaps: Tensor, coords: Tensor, half: int) -> Tensor:
    """``(N, K)`` maximum of each plane outside the ``(2·half+1)²`` box centred on ``coords`` (-inf if none):
    the box set to -inf, one contiguous reduction, the box restored (``heatmaps`` is unchanged afterwards)."""
    n, k, h, w = heatmaps.shape
    dev = heatmaps.device
    px = coords[..., 0].to(torch.long)
    py = coords[..., 1].to(torch.long)
    off = torch.arange(-half, half + 1, device=dev)
    ys = (py[..., None, None] + off.view(1, 1, -1, 1)).expand(n, k, 2 * half + 1, 2 * half + 1)
    xs = (px[..., None, None] + off.view(1, 1, 1, -1)).expand(n, k, 2 * half + 1, 2 * half + 1)
    valid = (ys >= 0) & (ys < h) & (xs >= 0) & (xs < w)
    peak = (py * w + px)[..., None, None]
    idx = torch.where(valid, ys * w + xs, peak).reshape(n, k, -1)  # off-plane entries re-mask the peak
    # Mask the box in place and restore it afterwards: a 13 MB clone per call costs more (fresh pages) than
    # the reduction itself. Duplicate indices all hold the peak, so the restore is consistent.
    with torch.inference_mode():
        flat = heatmaps.reshape(n, k, h * w)
        if flat.device.type == "cpu":  # NumPy's SIMD reductions are several times faster here
            arr, ix = flat.detach().numpy(), idx.numpy()
            saved_np = np.take_along_axis(arr, ix, axis=2)
            np.put_along_axis(arr, ix, -np.inf, axis=2)
            try:
                far_np = arr.max(axis=2)
            finally:
                np.put_along_axis(arr, ix, saved_np, axis=2)
            return torch.from_numpy(far_np)
        saved = torch.gather(flat, 2, idx)
        flat.scatter_(2, idx, float("-inf"))
        try:
            far = flat.amax(dim=2)
        finally:
            flat.scatter_(2, idx, saved)
    return far


def dark_decode_exact(
    heatmaps: Tensor, blur_kernel: int = 11, max_offset: float | None = None
) -> tuple[Tensor, Tensor]:
    """The literal DarkPose decode: blur and rescale the whole plane, log, then Taylor (slower; reference)."""
    heatmaps = heatmaps.to(torch.float32)
    coords, maxvals = get_heatmap_maximum(heatmaps)
    blurred = dark_blur(heatmaps, blur_kernel)
    logs = torch.log(torch.maximum(blurred, torch.tensor(1e-10, dtype=torch.float32, device=blurred.device)))
    return dark_taylor(logs, coords, max_offset).coords, maxvals
