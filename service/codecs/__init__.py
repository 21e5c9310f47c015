"""Keypoint codecs: heatmaps → sub-pixel keypoints (decode) and keypoints → heatmaps (encode).

All functions are batched over N instances × K keypoints and run on the heatmaps' device. DARK is a
codec choice, not a special case in the pipeline. See :mod:`service.codecs.functional` for the maths.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor

from .functional import (
    argmax_decode,
    dark_decode,
    quantised_gaussian_targets,
    quarter_offset_decode,
    unbiased_gaussian_targets,
)


@dataclass(frozen=True)
class HeatmapCodec:
    """Decode/encode configuration.

    Attributes:
        name: ``dark`` (DarkPose decoding + unbiased targets), ``standard`` (HRNet quarter offset +
            quantised targets) or ``argmax`` (integer maxima, for studies).
        blur_kernel: DARK modulation kernel (odd).
        sigma: target Gaussian sigma in heatmap px.
        max_offset: optional DARK safeguard in heatmap px (``None`` = official behaviour, no clamp).
    """

    name: str = "dark"
    blur_kernel: int = 11
    sigma: float = 2.0
    max_offset: float | None = None

    def decode(self, heatmaps: Tensor) -> tuple[Tensor, Tensor]:
        """``(N, K, H, W)`` → coords ``(N, K, 2)`` float32 heatmap px, scores ``(N, K)`` float32."""
        if self.name == "dark":
            return dark_decode(heatmaps, self.blur_kernel, self.max_offset)
        if self.name == "standard":
            return quarter_offset_decode(heatmaps)
        if self.name == "argmax":
            return argmax_decode(heatmaps)
        raise ValueError(f"unknown codec {self.name!r}; expected dark, standard or argmax")

    def encode(
        self, keypoints: Tensor, visible: Tensor, heatmap_size: tuple[int, int]
    ) -> tuple[Tensor, Tensor]:
        """Heatmap-space keypoints ``(N, K, 2)`` → targets ``(N, K, H, W)`` and weights ``(N, K)``."""
        if self.name == "dark":
            return unbiased_gaussian_targets(keypoints, visible, heatmap_size, self.sigma)
        return quantised_gaussian_targets(keypoints, visible, heatmap_size, self.sigma)


__all__ = [
    "HeatmapCodec",
    "argmax_decode",
    "dark_decode",
    "quantised_gaussian_targets",
    "quarter_offset_decode",
    "unbiased_gaussian_targets",
]
