"""Heatmaps synthesised from ground truth: encode (quantised or unbiased), degrade (blockwise-seeded noise or a second peak), decode."""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from ...codecs import HeatmapCodec
from ...codecs.functional import (
    quantised_gaussian_targets,
    unbiased_gaussian_targets,
)
from ...pipeline.geometry import apply_affine
from .config import DECODERS, F32, F64, NUM_JOINTS, DecoderName, Degradation, Encoding, ResolutionSpec
from .data import HeatmapGeometry, Persons

# ------------------------------------------------------------------------------------------------ maths


def encode(
    keypoints_hm: Tensor, visible: Tensor, res: ResolutionSpec, encoding: Encoding
) -> tuple[Tensor, Tensor]:
    """Targets ``(N, K, H, W)`` float32 and weights ``(N, K)`` float32 for heatmap-px keypoints
    ``(N, K, 2)`` (``visible`` ``(N, K)``, > 0 where labelled)."""
    fn = unbiased_gaussian_targets if encoding == "unbiased" else quantised_gaussian_targets
    return fn(keypoints_hm, visible, res.heatmap_size, res.sigma)


def degrade(
    targets: Tensor,
    weight: Tensor,
    keypoints_hm: Tensor,
    res: ResolutionSpec,
    encoding: Encoding,
    degradation: Degradation,
    seed: int,
    first: int = 0,
) -> Tensor:
    """Apply ``degradation`` to the planes with ``weight > 0`` (the others stay all-zero).

    Random draws are made per block of :data:`RNG_BLOCK` rows (dim 0), block ``b`` (counted from global
    row ``first``, a multiple of the block) with its own generator seeded from ``(seed, b)``: the draws do
    not depend on the encoding (both see the same noise field / distractor positions) nor on the chunking.

    Args:
        targets: ``(N, K, H, W)`` float32.
        weight: ``(N, K)`` float32.
        keypoints_hm: ``(N, K, 2)`` float64 heatmap px (the un-quantised keypoints).
        seed: the setting's seed (:func:`setting_seed`).
        first: global index of row 0 (for the random blocks).
    """
    if degradation.kind == "none":
        return targets
    if first % RNG_BLOCK:
        raise ValueError(f"first row {first} is not a multiple of the random block {RNG_BLOCK}")
    on = (weight > 0)[..., None, None]
    if degradation.kind == "noise":
        noise = _blockwise(targets.shape, seed, first, lambda shape, g: torch.randn(shape, generator=g))
        return torch.where(on, targets + degradation.level * noise, targets)
    n, k = weight.shape
    u = _blockwise(
        (n, k, 2), seed, first, lambda shape, g: torch.rand(shape, generator=g, dtype=torch.float64)
    )
    radius = (
        degradation.min_sigmas + (degradation.max_sigmas - degradation.min_sigmas) * u[..., 0]
    ) * res.sigma
    angle = 2 * math.pi * u[..., 1]
    shifted = keypoints_hm + torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], dim=-1)
    second, _ = encode(shifted, (weight > 0).to(torch.float32), res, encoding)
    return torch.where(on, targets + degradation.level * second, targets)


#: rows (heatmap planes in :func:`run_encoding`) per random-number block; chunks are multiples of it.
RNG_BLOCK = 32


def _blockwise(
    shape: Sequence[int], seed: int, first: int, draw: Callable[[tuple[int, ...], torch.Generator], Tensor]
) -> Tensor:
    """``draw`` a tensor of ``shape`` block by block along dim 0 (see :func:`degrade`)."""
    parts = []
    for b0 in range(0, shape[0], RNG_BLOCK):
        rows = min(RNG_BLOCK, shape[0] - b0)
        block = (first + b0) // RNG_BLOCK
        gen = torch.Generator().manual_seed((seed * 1_048_576 + block) % 2**63)
        parts.append(draw((rows, *shape[1:]), gen))
    return torch.cat(parts) if parts else torch.zeros(tuple(shape))


def decode(heatmaps: Tensor, decoder: DecoderName, blur_kernel: int = 11) -> tuple[Tensor, Tensor]:
    """Heatmap-px coords ``(N, K, 2)`` float32 and scores ``(N, K)`` float32 (raw maxima).

    ``dark`` is the official decoder (no offset safeguard), ``quarter`` HRNet's ±0.25 px, ``argmax`` the
    integer maximum.
    """
    if decoder not in DECODERS:
        raise ValueError(f"unknown decoder {decoder!r}; expected one of {DECODERS}")
    return HeatmapCodec(CODEC_OF[decoder], blur_kernel=blur_kernel, max_offset=None).decode(heatmaps)


#: the study's decoder names → the registered codecs (``quarter`` is the ``standard`` codec's decoder)
CODEC_OF: dict[str, str] = {"dark": "dark", "quarter": "standard", "argmax": "argmax"}


def _chunks(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, max(1, size)):
        yield slice(start, min(n, start + size))


DecoderKey = tuple[DecoderName, int]  # (decoder, blur kernel; 0 for non-DARK decoders)


def decoder_keys(res: ResolutionSpec, decoders: Sequence[DecoderName]) -> list[DecoderKey]:
    """The decoders run at ``res``: each of ``decoders`` (DARK with ``res.blur_kernel``), then DARK with
    each ablation kernel."""
    keys: list[DecoderKey] = [(d, res.blur_kernel if d == "dark" else 0) for d in decoders]
    if "dark" in decoders:
        keys += [("dark", k) for k in res.ablation_kernels if k != res.blur_kernel]
    return keys


def setting_seed(seed: int, res: ResolutionSpec, degradation: Degradation) -> int:
    """Deterministic per-(resolution, degradation) seed, independent of the encoding."""
    return (seed * 1_000_003 + zlib.crc32(f"{res.label}|{degradation.label}".encode())) % (2**63)


@dataclass(frozen=True)
class Decoded:
    """One decoder's output for all persons of one setting.

    Attributes:
        coords_hm: ``(N, K, 2)`` float64 heatmap px (``(0, 0)`` for weight-0 joints).
        coords_img: ``(N, K, 2)`` float64 image px (inverse heatmap affine of ``coords_hm``).
        scores: ``(N, K)`` float32 raw maxima (0 for weight-0 joints).
        dropped: ``(N, K)`` bool, labelled joints that got weight 0 (3σ box outside the heatmap).
    """

    coords_hm: F64
    coords_img: F64
    scores: F32
    dropped: NDArray[np.bool_]


def run_encoding(
    persons: Persons,
    geo: HeatmapGeometry,
    res: ResolutionSpec,
    encoding: Encoding,
    degradations: Sequence[Degradation],
    keys: Sequence[DecoderKey],
    seed: int = 0,
    chunk_planes: int = 64,
) -> dict[tuple[str, DecoderKey], Decoded]:
    """Encode → degrade → decode → image px for one (resolution, encoding), every degradation and decoder.

    Vectorised over the flat list of labelled joints (persons × joints with ``v > 0``),
    ``chunk_planes`` heatmap planes at a time (rounded down to a multiple of :data:`RNG_BLOCK`, at least
    one block), each encoded as an ``(M, 1, H, W)`` batch. The clean targets of a chunk are shared by all
    degradations, and the degraded heatmaps by all decoders. Only planes with weight > 0 are decoded: every
    other plane is all zeros in every setting, for which all three decoders return ``(0, 0)`` with score 0
    (the library behaviour, asserted by the tests), so that value is filled in directly.

    Returns:
        ``{(degradation label, decoder key): Decoded}``.
    """
    n = len(persons)
    pi, ji = np.nonzero(persons.visible)
    kp_flat = torch.from_numpy(geo.keypoints_hm[pi, ji]).view(-1, 1, 2)
    seeds = {d.label: setting_seed(seed, res, d) for d in degradations}
    chunk_planes = max(RNG_BLOCK, chunk_planes // RNG_BLOCK * RNG_BLOCK)
    coords = {(d.label, key): np.zeros((len(pi), 2), np.float64) for d in degradations for key in keys}
    scores = {(d.label, key): np.zeros(len(pi), np.float32) for d in degradations for key in keys}
    weight_flat = np.zeros(len(pi), np.float32)
    for sl in _chunks(len(pi), chunk_planes):
        kp = kp_flat[sl]
        targets, weight = encode(kp, torch.ones(kp.shape[:2]), res, encoding)
        on = (weight[:, 0] > 0).numpy()
        idx = np.arange(sl.start, sl.stop)[on]
        weight_flat[sl] = weight[:, 0].numpy()
        for deg in degradations:
            heatmaps = degrade(targets, weight, kp, res, encoding, deg, seeds[deg.label], sl.start)
            heatmaps = heatmaps[torch.from_numpy(on)]
            for key in keys:
                c, s = decode(heatmaps, key[0], key[1] or 11)
                coords[(deg.label, key)][idx] = c[:, 0].to(torch.float64).numpy()
                scores[(deg.label, key)][idx] = s[:, 0].numpy()
    dropped = np.zeros((n, NUM_JOINTS), dtype=bool)
    dropped[pi, ji] = weight_flat <= 0
    out: dict[tuple[str, DecoderKey], Decoded] = {}
    for name, flat in coords.items():
        c_hm = np.zeros((n, NUM_JOINTS, 2), np.float64)
        c_hm[pi, ji] = flat
        sc = np.zeros((n, NUM_JOINTS), np.float32)
        sc[pi, ji] = scores[name]
        out[name] = Decoded(c_hm, apply_affine(c_hm, geo.inverse), sc, dropped)
    return out
