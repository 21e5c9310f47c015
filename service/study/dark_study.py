"""DARK decoding study on real COCO keypoints, with heatmaps synthesised from ground truth (no network).

For every annotated person (``num_keypoints > 0``, ``iscrowd == 0``) the pipeline is the DarkPose test
pipeline with the network replaced by the training-target encoder:

1. GT box → DarkPose ``clean_bbox`` (clipped to the image, ``+1`` width convention) → ``center``/``scale``
   with the ``darkpose`` convention at input size ``4 × heatmap size`` (aspect 0.75 for all three sizes);
2. GT keypoints (``v > 0``) → heatmap space with the heatmap affine (DarkPose ``trans_heatmap``);
3. encode: HRNet quantised targets (centre rounded to the nearest heatmap pixel, windowed Gaussian) or
   DARK unbiased targets (sub-pixel centre, full-plane Gaussian), σ per resolution;
4. optionally degrade (i.i.d. Gaussian noise, or a second, displaced, lower peak);
5. decode with integer argmax, HRNet's ±0.25 quarter offset, or DARK (blur → log → Taylor);
6. inverse heatmap affine → image px → COCO results → pycocotools ``COCOeval('keypoints')`` on the same
   images, plus the mean/median pixel error over labelled joints.

Unlabelled joints (``v == 0``) and labelled joints whose 3σ box falls entirely outside the heatmap get weight
0: their plane is all zeros in every setting (degradations are applied to weighted planes only), so every
decoder returns heatmap ``(0, 0)`` with score 0, which maps back to the top-left corner of the enlarged box.
COCOeval ignores joints with GT ``v == 0``; the rescoring threshold (0.2) ignores score-0 joints; a labelled
but weight-0 joint is counted in the pixel error as it is (its count is reported as ``n_dropped``).

Shape vocabulary: N persons, K = 17 keypoints, heatmap size ``[W, H]``; heatmaps ``(N, K, H, W)`` float32;
heatmap coordinates ``(x, y)`` in heatmap px (pixel centres at integers); image coordinates in image px.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import math
import os
import platform
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from ..codecs.functional import (
    argmax_decode,
    dark_decode,
    quantised_gaussian_targets,
    quarter_offset_decode,
    unbiased_gaussian_targets,
)
from ..pipeline.geometry import affine_matrices, apply_affine, box_to_center_scale
from ..pipeline.postprocess import coco_results, rescore

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


# ------------------------------------------------------------------------------------------------ data


@dataclass(frozen=True)
class Persons:
    """The annotated persons of the study, in annotation-file order restricted to the selected images.

    Attributes:
        image_ids: ``(N,)`` COCO image ids.
        ann_ids: ``(N,)`` COCO annotation ids.
        boxes: ``(N, 4)`` float64 DarkPose ``clean_bbox`` ``(x, y, w, h)`` in image px.
        keypoints: ``(N, K, 2)`` float64 GT ``(x, y)`` in image px (0 where unlabelled).
        visible: ``(N, K)`` bool, GT ``v > 0``.
        img_ids: sorted image ids that hold at least one of the persons (the evaluation ``imgIds``).
    """

    image_ids: I64
    ann_ids: I64
    boxes: F64
    keypoints: F64
    visible: NDArray[np.bool_]
    img_ids: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.ann_ids)


def load_coco(ann_path: Path) -> Any:
    """A quiet ``pycocotools.coco.COCO`` for ``ann_path``."""
    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(ann_path))


def clean_bbox(bbox: Sequence[float], img_w: int, img_h: int) -> tuple[float, float, float, float] | None:
    """DarkPose GT box sanitising (``_load_coco_keypoint_annotation_kernal``); ``None`` if degenerate."""
    x, y, w, h = (float(v) for v in bbox[:4])
    x1, y1 = max(0.0, x), max(0.0, y)
    x2 = min(img_w - 1.0, x1 + max(0.0, w - 1))
    y2 = min(img_h - 1.0, y1 + max(0.0, h - 1))
    if x2 < x1 or y2 < y1:
        return None
    return (x1, y1, x2 - x1 + 1, y2 - y1 + 1)


def persons_from_coco(coco: Any, max_images: int | None = None) -> Persons:
    """Select persons with ``num_keypoints > 0``, ``iscrowd == 0``, positive area and a valid clean box.

    Args:
        coco: a ``pycocotools.coco.COCO``.
        max_images: keep only the first ``max_images`` images (ascending id) that hold such a person.
    """
    anns = [
        a
        for a in coco.dataset["annotations"]
        if a.get("num_keypoints", 0) > 0 and not a.get("iscrowd", 0) and a.get("area", 0) > 0
    ]
    keep_imgs = sorted({int(a["image_id"]) for a in anns})
    if max_images is not None:
        keep_imgs = keep_imgs[:max_images]
    keep = set(keep_imgs)
    image_ids, ann_ids, boxes, kps = [], [], [], []
    for a in anns:
        if int(a["image_id"]) not in keep:
            continue
        img = coco.imgs[a["image_id"]]
        box = clean_bbox(a["bbox"], int(img["width"]), int(img["height"]))
        if box is None:
            continue
        image_ids.append(int(a["image_id"]))
        ann_ids.append(int(a["id"]))
        boxes.append(box)
        kps.append(np.asarray(a["keypoints"], dtype=np.float64).reshape(NUM_JOINTS, 3))
    kp = np.stack(kps) if kps else np.zeros((0, NUM_JOINTS, 3))
    return Persons(
        image_ids=np.asarray(image_ids, dtype=np.int64),
        ann_ids=np.asarray(ann_ids, dtype=np.int64),
        boxes=np.asarray(boxes, dtype=np.float64).reshape(-1, 4),
        keypoints=kp[..., :2].copy(),
        visible=kp[..., 2] > 0,
        img_ids=tuple(sorted(set(image_ids))),
    )


def load_persons(ann_path: Path, max_images: int | None = None) -> tuple[Any, Persons]:
    """``(COCO object, Persons)`` for an annotation file (see :func:`persons_from_coco`)."""
    coco = load_coco(ann_path)
    return coco, persons_from_coco(coco, max_images)


@dataclass(frozen=True)
class HeatmapGeometry:
    """Per-person affines for one resolution: ``forward`` image → heatmap, ``inverse`` heatmap → image,
    both ``(N, 2, 3)`` float64, plus the GT keypoints in heatmap px ``(N, K, 2)`` float64."""

    forward: F64
    inverse: F64
    keypoints_hm: F64


def heatmap_geometry(persons: Persons, res: ResolutionSpec) -> HeatmapGeometry:
    """DarkPose center/scale at ``res.input_size`` and the heatmap affines (``darkpose`` convention)."""
    center, scale = box_to_center_scale(persons.boxes, res.input_size, "darkpose")
    fwd = affine_matrices(center, scale, res.heatmap_size, inv=False, convention="darkpose")
    inv = affine_matrices(center, scale, res.heatmap_size, inv=True, convention="darkpose")
    kp_hm = apply_affine(persons.keypoints, fwd)
    kp_hm = np.where(persons.visible[..., None], kp_hm, 0.0)
    return HeatmapGeometry(fwd, inv, kp_hm)


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
    if decoder == "dark":
        return dark_decode(heatmaps, blur_kernel=blur_kernel, max_offset=None)
    if decoder == "quarter":
        return quarter_offset_decode(heatmaps)
    if decoder == "argmax":
        return argmax_decode(heatmaps)
    raise ValueError(f"unknown decoder {decoder!r}; expected one of {DECODERS}")


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


# ------------------------------------------------------------------------------------------------ scoring


def results_for(persons: Persons, keypoints_img: F64, scores: NDArray[np.floating]) -> list[dict[str, Any]]:
    """COCO keypoint results (via :func:`service.pipeline.postprocess.coco_results`), one per person.

    Keypoint score = the decoded maximum; person score = DarkPose rescoring with box score 1, i.e. the mean
    of the keypoint scores above 0.2 (0 if none).

    Args:
        keypoints_img: ``(N, K, 2)`` image px.
        scores: ``(N, K)`` keypoint scores.
    """
    sc = np.asarray(scores, dtype=np.float32)
    person_scores = rescore(np.ones(len(persons)), sc, IN_VIS_THRE)
    kps = np.concatenate([keypoints_img.astype(np.float32), sc[..., None]], axis=-1)
    out: list[dict[str, Any]] = []
    for img_id in np.unique(persons.image_ids):
        sel = np.nonzero(persons.image_ids == img_id)[0]
        out += coco_results(int(img_id), kps[sel], person_scores[sel])
    return out


STAT_NAMES = ("AP", "AP50", "AP75", "APm", "APl", "AR", "AR50", "AR75", "ARm", "ARl")


def evaluate_keypoints(
    coco_gt: Any, results: list[dict[str, Any]], img_ids: Sequence[int]
) -> dict[str, float]:
    """pycocotools ``COCOeval(iouType='keypoints')`` restricted to ``img_ids``; the 10 summary stats."""
    from pycocotools.cocoeval import COCOeval

    if not results:
        return dict.fromkeys(STAT_NAMES, 0.0)
    with contextlib.redirect_stdout(io.StringIO()):
        dt = coco_gt.loadRes(results)
        ev = COCOeval(coco_gt, dt, "keypoints")
        ev.params.imgIds = list(img_ids)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {name: float(v) for name, v in zip(STAT_NAMES, ev.stats, strict=True)}


def pixel_errors(pred: F64, gt: F64, visible: NDArray[np.bool_]) -> tuple[float, float]:
    """Mean and median Euclidean error ``(N, K, 2)`` vs ``(N, K, 2)`` over ``visible`` joints (NaN if none).

    Non-finite predictions count as infinite error (they make the mean ``inf``; the median is robust)."""
    err = np.linalg.norm(pred - gt, axis=-1)[visible]
    if err.size == 0:
        return float("nan"), float("nan")
    err = np.where(np.isfinite(err), err, np.inf)
    return float(err.mean()), float(np.median(err))


# ------------------------------------------------------------------------------------------------ driver


@dataclass(frozen=True)
class StudyRow:
    """One line of the results table: a (resolution, encoding, degradation, decoder) setting.

    AP* / AR: pycocotools keypoint stats (fractions). Errors are Euclidean distances to the GT keypoint:
    ``err_img_*`` in image px, ``err_hm_*`` in heatmap px; ``*_mean``/``*_median`` over all labelled
    joints (``n_joints``), ``*_enc`` over the labelled joints that were encoded (weight > 0, i.e. all but
    the ``n_dropped`` whose 3σ box lies outside the heatmap and which decode to the box corner).
    """

    resolution: str
    heatmap_w: int
    heatmap_h: int
    sigma: float
    encoding: str
    degradation: str
    decoder: str
    blur_kernel: int
    primary: bool
    n_persons: int
    n_joints: int
    n_dropped: int
    AP: float
    AP50: float
    AP75: float
    APm: float
    APl: float
    AR: float
    err_img_mean: float
    err_img_median: float
    err_img_mean_enc: float
    err_hm_mean_enc: float
    err_hm_median: float

    @property
    def decoder_label(self) -> str:
        """``argmax``, ``quarter`` or ``dark k=11``."""
        return f"dark k={self.blur_kernel}" if self.decoder == "dark" else self.decoder


@dataclass
class StudyResult:
    """All rows plus run metadata (config, seeds, hardware, timings)."""

    rows: list[StudyRow]
    meta: dict[str, Any] = field(default_factory=dict)


def _hardware() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
    }


def run_study(config: StudyConfig, log: Log | None = None) -> StudyResult:
    """Run every (resolution × encoding × degradation) heatmap setting and score every decoder on it.

    Jobs are (resolution, encoding) pairs, run in this process (``workers == 1``) or in a spawn-started
    process pool; rows come back in the canonical order (config order of resolutions, encodings,
    degradations, then decoders) either way.
    """
    say: Log = log or (lambda _msg: None)
    t0 = time.perf_counter()
    coco, persons = load_persons(config.ann_path, config.max_images)
    if len(persons) == 0:
        raise ValueError(f"no person with keypoints in {config.ann_path}")
    n_vis = int(persons.visible.sum())
    say(f"{len(persons)} persons, {n_vis} labelled joints, {len(persons.img_ids)} images")
    jobs = [(r, e) for r in config.resolutions for e in config.encodings]
    # largest heatmaps first, so the pool ends with the short jobs
    jobs.sort(key=lambda job: -(job[0].width * job[0].height * (1 + len(job[0].ablation_kernels))))
    results: dict[tuple[str, str], _JobResult] = {}
    if config.workers <= 1:
        for res, enc in jobs:
            results[(res.label, enc)] = job = _run_job_with(config, coco, persons, res, enc)
            say(job.log)
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(min(config.workers, len(jobs)), mp_context=mp.get_context("spawn")) as pool:
            futures = {pool.submit(_run_job, config, res, enc): (res.label, enc) for res, enc in jobs}
            for fut in as_completed(futures):
                results[futures[fut]] = job = fut.result()
                say(job.log)
    rows = [
        row
        for res in config.resolutions
        for enc in config.encodings
        for row in results[(res.label, enc)].rows
    ]
    runtime = time.perf_counter() - t0
    meta: dict[str, Any] = {
        "ann_path": str(config.ann_path),
        "n_persons": len(persons),
        "n_images": len(persons.img_ids),
        "n_labelled_joints": n_vis,
        "seed": config.seed,
        "setting_seeds": {
            f"{r.label}|{d.label}": setting_seed(config.seed, r, d)
            for r in config.resolutions
            for d in config.degradations
        },
        "chunk_pixels": config.chunk_pixels,
        "tune_malloc": config.tune_malloc,
        "max_images": config.max_images,
        "torch_threads_per_worker": config.threads,
        "workers": config.workers,
        "resolutions": [asdict(r) for r in config.resolutions],
        "degradations": [asdict(d) for d in config.degradations],
        "encodings": list(config.encodings),
        "decoders": list(config.decoders),
        "runtime_s": round(runtime, 2),
        "job_s": {f"{k[0]}|{k[1]}": round(v.seconds, 2) for k, v in results.items()},
        "hardware": _hardware(),
    }
    say(f"done in {runtime:.1f}s")
    return StudyResult(rows, meta)


def keep_freed_memory() -> bool:
    """glibc only: stop returning freed memory to the OS (``mallopt``: mmap threshold 32 MB, trim threshold
    1 GB) for the rest of the process; returns whether it was applied.

    PyTorch's CPU allocator is plain ``malloc``. With glibc's defaults the large per-chunk temporaries of
    the study (heatmaps, the float64 blur's im2col buffer) are mmapped or trimmed away and page-faulted
    afresh on every call: on the 2-vCPU study machine that made system time exceed user time (87 M minor
    faults in the full run) and the whole study ~3× slower. The cost is that up to ~1 GB of freed heap stays
    with the process.
    """
    if platform.system() != "Linux":
        return False
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        ok = libc.mallopt(m_mmap_threshold, 32 * 1024 * 1024) == 1
        return bool(ok and libc.mallopt(m_trim_threshold, 1 << 30) == 1)
    except (OSError, AttributeError):
        return False


@dataclass(frozen=True)
class _JobResult:
    rows: list[StudyRow]
    seconds: float
    log: str


def _run_job(config: StudyConfig, res: ResolutionSpec, encoding: Encoding) -> _JobResult:
    """Pool entry point: load the annotations in the worker, then :func:`_run_job_with`."""
    coco, persons = load_persons(config.ann_path, config.max_images)
    return _run_job_with(config, coco, persons, res, encoding)


def _run_job_with(
    config: StudyConfig, coco: Any, persons: Persons, res: ResolutionSpec, encoding: Encoding
) -> _JobResult:
    """All degradations × decoders of one (resolution, encoding): heatmaps, decoding and COCO scoring."""
    threads_before = torch.get_num_threads()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    if config.tune_malloc:
        keep_freed_memory()
    try:
        t1 = time.perf_counter()
        geo = heatmap_geometry(persons, res)
        keys = decoder_keys(res, config.decoders)
        planes = max(1, config.chunk_pixels // (res.width * res.height))
        decoded = run_encoding(persons, geo, res, encoding, config.degradations, keys, config.seed, planes)
        t2 = time.perf_counter()
        rows: list[StudyRow] = []
        lines = []
        for deg in config.degradations:
            for key in keys:
                rows.append(_score(coco, persons, geo, res, encoding, deg, key, decoded[(deg.label, key)]))
            aps = "  ".join(f"{r.decoder_label} {100 * r.AP:.2f}" for r in rows[-len(keys) :])
            lines.append(f"  {res.label} {encoding:9s} {deg.label:9s} AP: {aps}")
        t3 = time.perf_counter()
        head = f"{res.label} {encoding}: heatmaps + decoding {t2 - t1:.1f}s, COCO scoring {t3 - t2:.1f}s"
        return _JobResult(rows, t3 - t1, "\n".join([head, *lines]))
    finally:
        torch.set_num_threads(threads_before)


def _score(
    coco: Any,
    persons: Persons,
    geo: HeatmapGeometry,
    res: ResolutionSpec,
    encoding: Encoding,
    deg: Degradation,
    key: DecoderKey,
    d: Decoded,
) -> StudyRow:
    stats = evaluate_keypoints(coco, results_for(persons, d.coords_img, d.scores), persons.img_ids)
    enc = persons.visible & ~d.dropped
    e_img = pixel_errors(d.coords_img, persons.keypoints, persons.visible)
    e_img_enc = pixel_errors(d.coords_img, persons.keypoints, enc)
    e_hm_enc = pixel_errors(d.coords_hm, geo.keypoints_hm, enc)
    e_hm = pixel_errors(d.coords_hm, geo.keypoints_hm, persons.visible)
    return StudyRow(
        resolution=res.label, heatmap_w=res.width, heatmap_h=res.height, sigma=res.sigma,
        encoding=encoding, degradation=deg.label, decoder=key[0], blur_kernel=key[1],
        primary=key[1] in (0, res.blur_kernel), n_persons=len(persons), n_joints=int(persons.visible.sum()),
        n_dropped=int(d.dropped.sum()),
        AP=stats["AP"], AP50=stats["AP50"], AP75=stats["AP75"], APm=stats["APm"], APl=stats["APl"],
        AR=stats["AR"], err_img_mean=e_img[0], err_img_median=e_img[1], err_img_mean_enc=e_img_enc[0],
        err_hm_mean_enc=e_hm_enc[0], err_hm_median=e_hm[1],
    )  # fmt: skip


# ------------------------------------------------------------------------------------------------ output


def markdown_table(rows: Sequence[StudyRow]) -> str:
    """The results as a GitHub markdown table (AP in %, errors in px; see :class:`StudyRow`)."""
    head = (
        "| heatmap | σ | encoding | degradation | decoder | AP | AP50 | AP75 "
        "| mean err img px | median err img px | mean err img px (encoded) | mean err hm px (encoded) |\n"
        "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    lines = [
        f"| {r.resolution} | {r.sigma:g} | {r.encoding} | {r.degradation} | {r.decoder_label} "
        f"| {100 * r.AP:.2f} | {100 * r.AP50:.2f} | {100 * r.AP75:.2f} "
        f"| {r.err_img_mean:.3f} | {r.err_img_median:.3f} | {r.err_img_mean_enc:.3f} "
        f"| {r.err_hm_mean_enc:.4f} |"
        for r in rows
    ]
    return head + "\n".join(lines) + "\n"


def plot_study(rows: Sequence[StudyRow], path: Path, noise_label: str | None = None) -> None:
    """AP (top) and mean image-px error over encoded joints (bottom, log scale) vs heatmap resolution, one
    line per decoder (primary kernels): unbiased/clean, quantised/clean, and unbiased with ``noise_label``
    (default: the middle noise level present)."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    prim = [r for r in rows if r.primary]
    noises = sorted(
        {r.degradation for r in prim if r.degradation.startswith("noise")}, key=lambda s: float(s[5:])
    )
    if noise_label is None and noises:
        noise_label = noises[len(noises) // 2]
    panels = [
        ("unbiased", "none", "unbiased targets, clean"),
        ("quantised", "none", "quantised targets, clean"),
    ]
    if noise_label is not None:
        panels.append(
            ("unbiased", noise_label, f"unbiased targets, {noise_label.replace('noise', 'noise σ=')}")
        )
    res_order = sorted({(r.heatmap_w * r.heatmap_h, r.resolution) for r in prim})
    labels = [lab for _, lab in res_order]
    fig, axes = plt.subplots(2, len(panels), figsize=(4.2 * len(panels), 6.4), squeeze=False, sharex=True)
    styles = {"argmax": ("tab:gray", "s"), "quarter": ("tab:blue", "^"), "dark": ("tab:red", "o")}
    for col, (enc, deg, title) in enumerate(panels):
        for dec, (color, marker) in styles.items():
            pts = {
                r.resolution: r
                for r in prim
                if r.encoding == enc and r.degradation == deg and r.decoder == dec
            }
            xs = [i for i, lab in enumerate(labels) if lab in pts]
            if not xs:
                continue
            name = pts[labels[xs[0]]].decoder_label if dec != "dark" else "DARK"
            axes[0, col].plot(
                xs, [100 * pts[labels[i]].AP for i in xs], marker=marker, color=color, label=name
            )
            axes[1, col].plot(
                xs, [pts[labels[i]].err_img_mean_enc for i in xs], marker=marker, color=color, label=name
            )
        axes[0, col].set_title(title, fontsize=10)
        axes[0, col].grid(alpha=0.3)
        axes[1, col].grid(alpha=0.3)
        axes[1, col].set_yscale("log")
        axes[1, col].yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        axes[1, col].yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        axes[1, col].set_xticks(range(len(labels)), labels)
        axes[1, col].set_xlabel("heatmap resolution (H×W)")
    axes[0, 0].set_ylabel("COCO keypoint AP (%)")
    axes[1, 0].set_ylabel("mean error, encoded joints (image px)")
    axes[0, 0].legend(fontsize=8, loc="lower right")
    fig.suptitle("Decoding GT-synthesised heatmaps, COCO val2017 subset (no network)", fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_outputs(result: StudyResult, out_dir: Path) -> dict[str, Path]:
    """Write ``results.csv``, ``results.json`` (rows + meta), ``results.md`` and ``dark_study.png``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "csv": out_dir / "results.csv",
        "json": out_dir / "results.json",
        "md": out_dir / "results.md",
        "png": out_dir / "dark_study.png",
    }
    records = [asdict(r) for r in result.rows]
    with paths["csv"].open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(records[0]) if records else [])
        writer.writeheader()
        writer.writerows(records)
    paths["json"].write_text(json.dumps({"meta": result.meta, "rows": records}, indent=1) + "\n")
    paths["md"].write_text(markdown_table(result.rows))
    plot_study(result.rows, paths["png"])
    return paths
