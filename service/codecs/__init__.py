"""Keypoint codecs: heatmaps → sub-pixel keypoints (decode) and keypoints → heatmaps (encode).

One module per codec (:mod:`.dark`, :mod:`.standard`, :mod:`.argmax`; encoders in :mod:`.targets`), one
registry entry each. All functions are batched over N instances × K keypoints and run on the heatmaps'
device. DARK is a codec choice, not a special case in the pipeline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import Tensor

from .argmax import argmax_decode
from .dark import dark_decode
from .standard import quarter_offset_decode
from .targets import quantised_gaussian_targets, unbiased_gaussian_targets

#: ``decode(heatmaps (N, K, H, W), codec) -> (coords (N, K, 2) heatmap px, scores (N, K))``
Decoder = Callable[[Tensor, "HeatmapCodec"], tuple[Tensor, Tensor]]
#: ``encode(keypoints (N, K, 2), visible (N, K), (W, H), sigma) -> (targets (N, K, H, W), weights (N, K))``
Encoder = Callable[[Tensor, Tensor, tuple[int, int], float], tuple[Tensor, Tensor]]


@dataclass(frozen=True)
class CodecEntry:
    """A registered codec: its decoder and the training-target encoder that goes with it."""

    name: str
    decode: Decoder
    encode: Encoder
    description: str


CODECS: dict[str, CodecEntry] = {
    e.name: e
    for e in (
        CodecEntry("dark", lambda hm, c: dark_decode(hm, c.blur_kernel, c.max_offset), unbiased_gaussian_targets,
                   "DarkPose decoding (blur, log, Taylor step) + unbiased targets"),
        CodecEntry("standard", lambda hm, _c: quarter_offset_decode(hm), quantised_gaussian_targets,
                   "HRNet-official: argmax + quarter-pixel offset, quantised targets"),
        CodecEntry("argmax", lambda hm, _c: argmax_decode(hm), quantised_gaussian_targets,
                   "integer argmax (studies)"),
    )
}  # fmt: skip


def codec_names() -> tuple[str, ...]:
    return tuple(CODECS)


def get_codec(name: str) -> CodecEntry:
    try:
        return CODECS[name]
    except KeyError:
        raise ValueError(f"unknown codec {name!r}; expected one of {', '.join(CODECS)}") from None


@dataclass(frozen=True)
class HeatmapCodec:
    """Decode/encode configuration of one model.

    Attributes:
        name: a registered codec: ``dark`` (DarkPose decoding + unbiased targets), ``standard`` (HRNet quarter
            offset + quantised targets) or ``argmax`` (integer maxima, for studies).
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
        return get_codec(self.name).decode(heatmaps, self)

    def encode(
        self, keypoints: Tensor, visible: Tensor, heatmap_size: tuple[int, int]
    ) -> tuple[Tensor, Tensor]:
        """Heatmap-space keypoints ``(N, K, 2)`` → targets ``(N, K, H, W)`` and weights ``(N, K)``."""
        return get_codec(self.name).encode(keypoints, visible, heatmap_size, self.sigma)


__all__ = [
    "CODECS",
    "CodecEntry",
    "HeatmapCodec",
    "argmax_decode",
    "codec_names",
    "dark_decode",
    "get_codec",
    "quantised_gaussian_targets",
    "quarter_offset_decode",
    "unbiased_gaussian_targets",
]
