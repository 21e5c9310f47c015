"""DEKR decoding, exactly as the official code at ``HRNet/DEKR@7a30313`` (``tools/valid.py`` single scale, and
``lib/core/inference.py``, ``lib/core/nms.py``, ``lib/utils/transforms.py``, ``lib/utils/rescore.py``).

From the network's raw outputs (heatmaps ``(1, K+1, h, w)`` with the person centre last, offsets ``(1, 2K, h, w)``
in output pixels) of the plain and, with flip test, the flipped (+3 px shifted) input:

1. pose maps ``location − offset``; with flip, the flipped heatmap is mirrored and re-indexed with the centre
   kept last, the flipped pose map is re-indexed, ``x → w − x − 1``, mirrored; plain and flipped are averaged
   (heatmaps and **pose maps**, not offsets);
2. person centres: max-pool of the centre map (kernel 7 / 5 / 3 when ``(h + w) / 2`` > 300 / > 200 / else),
   cells equal to their pool maximum (plateaus keep every cell), top ``max_people`` then score > threshold;
3. proposals: ``ratio · posemap`` at the centres (``ratio`` = input / output size = 4), centre score per joint;
   the heatmaps upsampled ×``ratio`` (``align_corners=True`` to ``ratio·(h−1)+1`` then replication pad);
4. heat values at ``clamp(floor(x)), clamp(floor(y))`` of the upsampled map; heat score = their mean;
5. pose NMS in index order (descending centre score): pose ``i`` groups every pose with more than
   ``nms_num`` joints closer than ``nms_thre · sqrt(area_i)``; the group's best heat score is kept unless
   already suppressed; joint scores become centre score × heat value, the person score their mean;
6. back to image pixels with the inverse of the resize affine; optionally rescoring (``person score ×`` the
   rescore MLP of the pose features, no sigmoid: scores may be negative).

Shapes use ``K`` joints; all maths in float32 torch on the outputs' device, the affine in NumPy as the official.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray
from torch import Tensor

#: flip index tables of the official ``FLIP_CONFIG`` (the ``_WITH_CENTER`` ones keep the centre channel last)
FLIP_COCO = (0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15)
FLIP_CROWDPOSE = (1, 0, 3, 2, 5, 4, 7, 6, 9, 8, 11, 10, 12, 13)
#: limbs of the rescoring features (``lib/utils/rescore.py``)
LINKS_COCO = ((0, 0, 1, 1, 2, 3, 4, 5, 5, 5, 6, 6, 7, 8, 11, 11, 12, 13, 14),
              (1, 2, 2, 3, 4, 5, 6, 6, 7, 11, 8, 12, 9, 10, 12, 13, 14, 15, 16))  # fmt: skip
LINKS_CROWDPOSE = ((12, 13, 13, 0, 1, 2, 3, 0, 1, 6, 7, 8, 9, 6, 0),
                   (13, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 7, 1))  # fmt: skip


@dataclass(frozen=True)
class DekrConfig:
    """The official test settings (COCO W32 yaml merged with ``default.py``; CrowdPose: ``nms_num`` 7).

    Attributes:
        flip_index: joint permutation under a horizontal flip (``FLIP_CONFIG``, without the centre).
        links: the two joint lists of the rescoring features.
        input_size: short side of the network input, px (512 for W32, 640 for W48).
        output_ratio: input / output map size (4).
    """

    flip_index: tuple[int, ...] = FLIP_COCO
    links: tuple[tuple[int, ...], tuple[int, ...]] = LINKS_COCO
    input_size: int = 512
    output_ratio: float = 4.0
    max_people: int = 30
    keypoint_threshold: float = 0.01
    pool_thresholds: tuple[float, float] = (300.0, 200.0)
    nms_thre: float = 0.05
    nms_num: int = 8

    @property
    def num_joints(self) -> int:
        return len(self.flip_index)


def inference_resize(image_rgb: NDArray[np.uint8], input_size: int) -> tuple[NDArray[np.uint8], NDArray[np.int64], NDArray[np.float64]]:
    """Official ``resize_align_multi_scale(image, input_size, 1, 1)``: short side → ``input_size``, long side
    rounded **up** to a multiple of 64, centre ``int(w/2 + .5)``; returns the resized image (zero border), the
    centre and the scale (px / 200) the inverse uses."""
    from ..pipeline.geometry import get_affine_transform

    h, w = image_rgb.shape[:2]
    center = np.array([int(w / 2.0 + 0.5), int(h / 2.0 + 0.5)])
    min_input = int((input_size + 63) // 64 * 64)
    if w < h:
        w_r = int(min_input)
        h_r = int((min_input / w * h + 63) // 64 * 64)
        scale = np.array([w / 200.0, h_r / w_r * w / 200.0])
    else:
        h_r = int(min_input)
        w_r = int((min_input / h * w + 63) // 64 * 64)
        scale = np.array([w_r / h_r * h / 200.0, h / 200.0])
    trans = get_affine_transform(center.astype(np.float64), scale, 0.0, (w_r, h_r), convention="hrnet")
    resized: NDArray[np.uint8] = np.asarray(cv2.warpAffine(image_rgb, trans, (w_r, h_r)), dtype=np.uint8)
    return resized, center.astype(np.int64), scale.astype(np.float64)


def flip_input(x: Tensor) -> Tensor:
    """The official flipped input: mirrored, then shifted left by 3 px (an overlapping in-place copy; the last
    3 columns keep the mirrored image's values)."""
    out = torch.flip(x, [3])
    out[:, :, :, :-3] = out[:, :, :, 3:].clone()
    return out


def offset_to_pose(offset: Tensor, flip_index: Sequence[int] | None = None) -> Tensor:
    """``(1, 2K, h, w)`` offsets → pose map ``(1, 2K, h, w)``: ``location − offset`` per joint (x, y); for the
    flipped pass also re-indexed and ``x → w − x − 1`` (still in the flipped frame)."""
    _, n, h, w = offset.shape
    k = n // 2
    off = offset[0].permute(1, 2, 0).reshape(h * w, k, 2)
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32, device=offset.device),
                            torch.arange(w, dtype=torch.float32, device=offset.device), indexing="ij")  # fmt: skip
    loc = torch.stack((xs.reshape(-1), ys.reshape(-1)), dim=1)[:, None, :].expand(-1, k, -1)
    poses = loc - off
    if flip_index is not None:
        poses = poses[:, list(flip_index), :]
        poses[:, :, 0] = w - poses[:, :, 0] - 1
    return poses.contiguous().view(h * w, 2 * k).permute(1, 0).contiguous().view(1, -1, h, w).contiguous()


def combine(
    heatmap: Tensor, offset: Tensor, heatmap_flip: Tensor | None, offset_flip: Tensor | None, cfg: DekrConfig
) -> tuple[Tensor, Tensor]:
    """``get_multi_stage_outputs`` after the forwards: the (flip-averaged) heatmap and pose map."""
    posemap = offset_to_pose(offset)
    if heatmap_flip is None or offset_flip is None:
        return heatmap, posemap
    heat_index = [*cfg.flip_index, cfg.num_joints]
    heatmap = (heatmap + torch.flip(heatmap_flip, [3])[:, heat_index, :, :]) / 2.0
    posemap = (posemap + torch.flip(offset_to_pose(offset_flip, cfg.flip_index), [3])) / 2.0
    return heatmap, posemap


def pool_kernel(h: int, w: int, cfg: DekrConfig) -> int:
    size = (h + w) / 2.0
    return 7 if size > cfg.pool_thresholds[0] else 5 if size > cfg.pool_thresholds[1] else 3


def centre_candidates(centre: Tensor, cfg: DekrConfig) -> tuple[Tensor, Tensor, int]:
    """``get_maximum_from_heatmap`` on the ``(h, w)`` centre map: row-major indices and scores of the local maxima
    (plateaus included), top ``max_people``, score > threshold; and the pool kernel used."""
    h, w = centre.shape
    k = pool_kernel(h, w, cfg)
    c = centre[None, None]
    maxm = F.max_pool2d(c, k, 1, (k - 1) // 2)
    scores = (c * torch.eq(maxm, c).float()).view(-1)
    scores, ind = scores.topk(min(cfg.max_people, scores.numel()))
    sel = scores > cfg.keypoint_threshold
    return ind[sel], scores[sel], k


def up_interpolate(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Official ``up_interpolate``: bilinear with ``align_corners=True`` to ``size − scale + 1``, then replication
    padding of ``scale − 1`` at the right and bottom (output pixel ``i`` lands on ``scale · i``)."""
    sh, sw = int(size[0] / x.shape[2]), int(size[1] / x.shape[3])
    inter = F.interpolate(x, size=[size[0] - sh + 1, size[1] - sw + 1], align_corners=True, mode="bilinear")
    return F.pad(inter, (0, sw - 1, 0, sh - 1), mode="replicate")


@dataclass
class DekrDecoded:
    """Persons of one image and the intermediates of the official decode (for checks and debugging).

    Attributes:
        poses: ``(M, K, 3)`` float32: x, y in image px (0-based) and joint score (centre score × heat value).
        scores: ``(M,)`` float64 person scores (rescored when a rescore net was given).
    """

    poses: NDArray[np.float32]
    scores: NDArray[np.float64]
    heatmap: Tensor | None = None
    posemap: Tensor | None = None
    pool_kernel: int = 3
    ctr_ind: Tensor | None = None
    ctr_score: Tensor | None = None
    proposals: Tensor | None = None
    heatval: Tensor | None = None
    heat_score: Tensor | None = None
    nms_keep: list[int] = field(default_factory=list)
    nms_poses: NDArray[np.float32] | None = None
    nms_scores: NDArray[np.float32] | None = None
    rescore_feature: NDArray[np.float32] | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def nms_core(pose_coord: Tensor, heat_score: Tensor, cfg: DekrConfig) -> list[int]:
    """Official ``nms_core``: index order, asymmetric thresholds (row ``i``'s own area), the group's best heat
    score kept unless already suppressed."""
    n, k, _ = pose_coord.shape
    span = pose_coord.amax(1) - pose_coord.amin(1)  # (n, 2)
    area = (span[:, 0] * span[:, 0] + span[:, 1] * span[:, 1])[:, None, None].expand(n, n, k)
    dist = (pose_coord[:, None, :, :] - pose_coord).pow(2).sum(3).sqrt()
    close = (dist < cfg.nms_thre * torch.sqrt(area)).sum(2) > cfg.nms_num  # (n, n)
    ignored: set[int] = set()
    keep: list[int] = []
    for i in range(n):
        if i in ignored:
            continue
        group = [int(j) for j in close[i].nonzero()[:, 0].tolist()]
        best = group[int(torch.argmax(heat_score[group]))]
        if best in ignored:
            continue
        keep.append(best)
        ignored.update(group)
    return keep


def rescore_feature(poses: NDArray[np.floating], links: tuple[tuple[int, ...], tuple[int, ...]]) -> NDArray[np.float32]:
    """Official ``get_feature``: limb vectors and lengths normalised by the mean of two torso limbs (at least 1),
    then the joint scores → ``(M, 3·L + K)`` float32."""
    x = np.asarray(poses, dtype=np.float32)
    joint, vis = x[:, :, :2], x[:, :, 2]
    rel = joint[:, list(links[0])] - joint[:, list(links[1])]
    length = ((rel**2)[:, :, 0] + (rel**2)[:, :, 1]) ** 0.5
    norm = (length[:, 9] + length[:, 11]) / 2
    norm = np.tile(norm, (len(links[0]), 2, 1)).transpose(2, 0, 1)
    norm[norm < 1] = 1
    length = length / norm[:, :, 0]
    rel = (rel / norm).reshape((-1, len(links[0]) * 2))
    return np.concatenate([rel, length, vis], axis=1).astype(np.float32)


def decode(
    heatmap: Tensor,
    offset: Tensor,
    heatmap_flip: Tensor | None,
    offset_flip: Tensor | None,
    cfg: DekrConfig,
    center: NDArray[np.integer],
    scale: NDArray[np.floating],
    base_size: tuple[int, int],
    rescore_net: torch.nn.Module | None = None,
) -> DekrDecoded:
    """The official single-scale test path after the forwards (see the module docstring).

    Args:
        heatmap, offset: plain-pass outputs ``(1, K+1, h, w)`` / ``(1, 2K, h, w)`` float32.
        heatmap_flip, offset_flip: flipped-pass outputs in the flipped frame, or ``None`` (no flip test).
        center, scale, base_size: from :func:`inference_resize` (``base_size`` = resized ``(w, h)``).
        rescore_net: the rescoring MLP (``None``: scores are the NMS scores).
    """
    heatmap, posemap = combine(heatmap, offset, heatmap_flip, offset_flip, cfg)
    k = cfg.num_joints
    h, w = heatmap.shape[2], heatmap.shape[3]
    r = cfg.output_ratio
    heatmap_avg = up_interpolate(heatmap, (int(r * h), int(r * w)))
    ind, ctr_score, kernel = centre_candidates(heatmap[0, -1], cfg)
    pm = posemap[0].permute(1, 2, 0).reshape(h * w, -1, 2)
    pose = r * pm[ind]
    proposals = torch.cat([pose, ctr_score[:, None, None].expand(-1, k, 1)], dim=2)
    out = DekrDecoded(np.zeros((0, k, 3), np.float32), np.zeros(0), heatmap, posemap, kernel, ind, ctr_score, proposals)
    if len(ind) == 0:
        return out
    coord, score = proposals[:, :, :2], proposals[:, :, 2:]
    hh, ww = heatmap_avg.shape[2], heatmap_avg.shape[3]
    flat = heatmap_avg[0, :-1].flatten(1, 2).transpose(0, 1)
    yb = torch.clamp(torch.floor(coord[:, :, 1]), 0, hh - 1).long()
    xl = torch.clamp(torch.floor(coord[:, :, 0]), 0, ww - 1).long()
    heatval = torch.gather(flat, 0, yb * ww + xl).unsqueeze(-1)
    heat_score = (torch.sum(heatval, dim=1) / k)[:, 0]
    poses_all = torch.cat([coord.cpu(), (score * heatval).cpu()], dim=2)
    keep = nms_core(coord, heat_score, cfg)
    kept = poses_all[keep]
    if len(keep) > cfg.max_people:
        _, top = torch.topk(heat_score[keep], cfg.max_people)
        kept = kept[top]
    nms_poses = kept.numpy()
    nms_scores = np.array([p[:, 2].mean() for p in nms_poses], dtype=np.float32)
    final = np.stack([_to_image(p, center, scale, base_size) for p in nms_poses]).astype(np.float32)
    out.heatval, out.heat_score, out.nms_keep = heatval[:, :, 0], heat_score, keep
    out.nms_poses, out.nms_scores, out.poses = nms_poses, nms_scores, final
    if rescore_net is None:
        out.scores = nms_scores.astype(np.float64)
        return out
    feat = rescore_feature(final, cfg.links)
    with torch.inference_mode():
        mlp = rescore_net(torch.from_numpy(feat)).numpy()
    mlp[np.isnan(mlp)] = 0
    out.rescore_feature = feat
    out.scores = (mlp * nms_scores.reshape(mlp.shape)).astype(np.float64).reshape(-1)
    return out


def _to_image(person: NDArray[np.float32], center: NDArray[np.integer], scale: NDArray[np.floating],
              base_size: tuple[int, int]) -> NDArray[np.float32]:  # fmt: skip
    """Official ``transform_preds`` of one person: input px → image px through the inverse resize affine."""
    from ..pipeline.geometry import apply_affine, get_affine_transform

    trans = get_affine_transform(np.asarray(center, np.float64), np.asarray(scale, np.float64), 0.0, base_size,
                                 inv=True, convention="hrnet")  # fmt: skip
    out = person.copy()
    out[:, 0:2] = apply_affine(person[None, :, 0:2].astype(np.float64), trans[None])[0]
    return out
