"""The codecs' functional API in one place (re-exported from the per-codec modules).

Shape vocabulary: N instances, K keypoints, heatmap size ``[W, H]``; heatmaps are ``(N, K, H, W)``
float32 on any device; coordinates are ``(x, y)`` in heatmap pixels (pixel centres at integers).
Modules: :mod:`.common` (argmax), :mod:`.dark` (DARK decoding; CPU tensors go to :mod:`.dark_numpy`),
:mod:`.standard` (quarter offset), :mod:`.argmax`, :mod:`.targets` (encoders).
"""

from .argmax import argmax_decode
from .common import get_heatmap_maximum
from .dark import dark_blur, dark_decode, dark_decode_exact, dark_decode_torch, dark_taylor, gaussian_taps
from .standard import quarter_offset_decode
from .targets import quantised_gaussian_targets, unbiased_gaussian_targets

__all__ = [
    "argmax_decode",
    "dark_blur",
    "dark_decode",
    "dark_decode_exact",
    "dark_decode_torch",
    "dark_taylor",
    "gaussian_taps",
    "get_heatmap_maximum",
    "quantised_gaussian_targets",
    "quarter_offset_decode",
    "unbiased_gaussian_targets",
]
