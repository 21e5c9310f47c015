"""Study vocabulary and configuration: resolutions (with the official σ and blur kernels), degradations, the run config."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

Encoding = Literal["quantised", "unbiased"]
DecoderName = Literal["argmax", "quarter", "dark"]
DegradationKind = Literal["none", "noise", "second_peak"]

ENCODINGS: tuple[Encoding, ...] = ("quantised", "unbiased")
DECODERS: tuple[DecoderName, ...] = ("argmax", "quarter", "dark")
NUM_JOINTS = 17
#: Input size = heatmap size × 4 (the HRNet output stride).
STRIDE = 4
#: DarkPose COCO yamls: (heatmap H, W) → (σ, TEST.BLUR_KERNEL, ablation kernels). At 32×24 the study's
#: main kernel is the w32 yaml's 3 (the w48 yaml's 11 is run as an ablation): same AP on clean targets,
#: and k = 11 (±5 px on a 24-px-wide map) merges a second peak 2.5–5 px away (see ``docs/DARK_STUDY.md``).
OFFICIAL: dict[tuple[int, int], tuple[float, int, tuple[int, ...]]] = {
    (64, 48): (2.0, 11, ()),
    (32, 24): (1.0, 3, (11,)),
    (96, 72): (3.0, 11, ()),
}
#: Rescoring threshold of DarkPose's ``evaluate`` (``TEST.IN_VIS_THRE``).
IN_VIS_THRE = 0.2

F64 = NDArray[np.float64]
F32 = NDArray[np.float32]
I64 = NDArray[np.int64]
Log = Callable[[str], None]


# ------------------------------------------------------------------------------------------------ specs


@dataclass(frozen=True)
class ResolutionSpec:
    """One heatmap resolution: size, target σ (heatmap px) and DARK blur kernel(s).

    ``blur_kernel`` is the kernel of the main ``dark`` rows; ``ablation_kernels`` add extra ``dark`` rows
    (``primary = False``) with other kernels on the same heatmaps.
    """

    height: int
    width: int
    sigma: float
    blur_kernel: int = 11
    ablation_kernels: tuple[int, ...] = ()

    @property
    def label(self) -> str:
        """``"HxW"``, e.g. ``"64x48"`` (the paper's notation)."""
        return f"{self.height}x{self.width}"

    @property
    def heatmap_size(self) -> tuple[int, int]:
        """``(W, H)``."""
        return (self.width, self.height)

    @property
    def input_size(self) -> tuple[int, int]:
        """Model input ``(W_in, H_in)`` = 4 × heatmap size (192×256 for 64×48)."""
        return (self.width * STRIDE, self.height * STRIDE)

    @classmethod
    def parse(cls, text: str) -> ResolutionSpec:
        """``"64x48"`` (H×W) → spec with the official σ/kernel; other sizes get σ = 2·W/48 and kernel 11."""
        try:
            h_s, w_s = text.lower().strip().split("x")
            h, w = int(h_s), int(w_s)
        except ValueError:
            raise ValueError(f"resolution must look like 64x48 (HxW), got {text!r}") from None
        if h < 5 or w < 5:
            raise ValueError(f"heatmap resolution {text!r} is too small for the DARK Taylor step (needs ≥ 5)")
        if (h, w) in OFFICIAL:
            sigma, kernel, ablation = OFFICIAL[(h, w)]
            return cls(h, w, sigma, kernel, ablation)
        return cls(h, w, round(2.0 * w / 48, 3), 11)


@dataclass(frozen=True)
class Degradation:
    """A synthetic degradation of the encoded heatmaps (applied to weighted planes only).

    * ``none``;
    * ``noise``: add i.i.d. Gaussian noise of std ``level`` (relative to the peak height 1);
    * ``second_peak``: add ``level ×`` a second Gaussian of the same σ and encoding, centred at a random
      direction (uniform angle) and distance ``U(min_sigmas, max_sigmas) · σ`` from the keypoint
      (2.5–5 σ = 5–10 px at 64×48 with σ = 2; the distance scales with the resolution like the body does).
    """

    kind: DegradationKind
    level: float = 0.0
    min_sigmas: float = 2.5
    max_sigmas: float = 5.0

    @property
    def label(self) -> str:
        """Short ASCII id: ``none``, ``noise0.05``, ``peak0.6``."""
        if self.kind == "none":
            return "none"
        if self.kind == "noise":
            return f"noise{self.level:g}"
        return f"peak{self.level:g}"


@dataclass(frozen=True)
class StudyConfig:
    """Everything that defines a study run (all settings are the cross product, decoders share heatmaps)."""

    ann_path: Path
    resolutions: tuple[ResolutionSpec, ...]
    degradations: tuple[Degradation, ...]
    encodings: tuple[Encoding, ...] = ENCODINGS
    decoders: tuple[DecoderName, ...] = DECODERS
    seed: int = 0
    #: heatmap pixels per chunk (planes per chunk = this // (H·W), so 85 planes at 64×48). It keeps the
    #: float64 ``conv2d`` im2col buffer of the DARK blur (``planes × k × H × W × 8`` bytes = 23 MB for k = 11)
    #: under glibc's 32 MB mmap ceiling, see :func:`keep_freed_memory`.
    chunk_pixels: int = 262_144
    max_images: int | None = None
    #: call :func:`keep_freed_memory` in the processes that run jobs (3× faster here).
    tune_malloc: bool = True
    #: torch intra-op threads while a job runs (restored afterwards; ``None`` leaves them). DARK's float64
    #: blur (``conv2d`` slow path) gained nothing from a 2nd thread on the 2-vCPU study machine, so 1.
    threads: int | None = 1
    #: worker processes, each running whole (resolution, encoding) jobs, largest first. Results do not
    #: depend on it (random draws are seeded per setting and per block of planes).
    workers: int = 1


def default_degradations(
    noise: Sequence[float] = (0.02, 0.05, 0.1), second_peak: bool = True
) -> tuple[Degradation, ...]:
    """``none``, one ``noise`` per std level, and (optionally) ``second_peak`` of height 0.6."""
    out = [Degradation("none")]
    out += [Degradation("noise", float(s)) for s in noise]
    if second_peak:
        out.append(Degradation("second_peak", 0.6))
    return tuple(out)
