"""DEKR (Geng et al., CVPR 2021, ``HRNet/DEKR`` at ``7a30313``): the bottom-up network, official key layout.

An HRNet backbone whose last stage keeps all four branches; the branches are upsampled (bilinear,
``align_corners=False``, as ``F.upsample`` does) to the highest resolution and concatenated; two heads read the
result:

* heatmaps: 1×1 transition (BN, ReLU) → one BasicBlock → 1×1 conv to K+1 channels (the K keypoint heatmaps and
  the person-centre heatmap, channel K);
* offsets: 1×1 transition to K·15 channels (BN, ReLU), then per joint its 15 channels → two ``AdaptBlock``\\ s
  (adaptive convolution: a per-pixel 2×2 transform and a translation of the regular 3×3 sampling grid, run by
  torchvision's ``DeformConv2d``) → 1×1 conv to 2 channels (x, y offsets in output pixels).

Output: ``(heatmaps (N, K+1, H/4, W/4), offsets (N, 2K, H/4, W/4))`` for an input ``(N, 3, H, W)`` (RGB,
ImageNet-normalised, sides multiples of 32 in the official test resize: of 64).

``AdaptBlock`` registers its 3×3 sampling grid (``regular_matrix``, ``[2, 9]``) as a persistent buffer, so the
official checkpoints carry it; it is loaded with them like any other state entry.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import DeformConv2d

from ._registry import register_net, strip_module_prefix
from .hrnet import BN_MOMENTUM, BasicBlock, PoseHighResolutionNet

#: the regular 3×3 sampling grid, ``[2, 9]``, exactly the official ``AdaptBlock.regular_matrix``
REGULAR_GRID = ((-1, -1, -1, 0, 0, 0, 1, 1, 1), (-1, 0, 1, -1, 0, 1, -1, 0, 1))


class AdaptBlock(nn.Module):
    """The official adaptive residual block: offsets of a 3×3 deformable convolution from a per-pixel affine
    transform of the regular grid plus a translation."""

    regular_matrix: Tensor

    def __init__(self, inplanes: int, outplanes: int, dilation: int = 1) -> None:
        super().__init__()
        self.register_buffer("regular_matrix", torch.tensor(REGULAR_GRID, dtype=torch.float32))
        self.transform_matrix_conv = nn.Conv2d(inplanes, 4, 3, 1, 1, bias=True)
        self.translation_conv = nn.Conv2d(inplanes, 2, 3, 1, 1, bias=True)
        self.adapt_conv = DeformConv2d(inplanes, outplanes, kernel_size=3, stride=1, padding=dilation,
                                       dilation=dilation, bias=False, groups=1)  # fmt: skip
        self.bn = nn.BatchNorm2d(outplanes, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        n, _, h, w = x.shape
        transform = self.transform_matrix_conv(x).permute(0, 2, 3, 1).reshape((n * h * w, 2, 2))
        offset = torch.matmul(transform, self.regular_matrix) - self.regular_matrix
        offset = offset.transpose(1, 2).reshape((n, h, w, 18)).permute(0, 3, 1, 2)
        translation = self.translation_conv(x)
        offset[:, 0::2, :, :] += translation[:, 0:1, :, :]
        offset[:, 1::2, :, :] += translation[:, 1:2, :, :]
        out: Tensor = self.relu(self.bn(self.adapt_conv(x, offset)) + x)
        return out


def _transition(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 1, 1, 0, bias=False), nn.BatchNorm2d(cout), nn.ReLU(True))


class DEKR(nn.Module):
    """DEKR on an HRNet backbone (official module names: keys equal ``keys_dekr_*.json``).

    Args:
        stage_channels / stage_modules / stage_blocks: the HRNet backbone (W32: ``[[32, 64], [32, 64, 128],
            [32, 64, 128, 256]]``, ``[1, 4, 3]``, ``[4, 4, 4]``).
        num_joints: K (17 COCO, 14 CrowdPose).
        heatmap_channels: width of the heatmap head (32 for W32, 48 for W48).
        offset_channels_per_joint: width of each joint's offset branch (15 for W32, 24 for W48).
    """

    def __init__(
        self,
        stage_channels: Sequence[Sequence[int]],
        stage_modules: Sequence[int] = (1, 4, 3),
        stage_blocks: Sequence[int] = (4, 4, 4),
        num_joints: int = 17,
        heatmap_channels: int = 32,
        offset_channels_per_joint: int = 15,
    ) -> None:
        super().__init__()
        hr = PoseHighResolutionNet(stage_channels, stage_modules, stage_blocks, num_joints, multi_scale_last=True)
        # the backbone's modules under their official top-level names (no final_layer in DEKR)
        for name in ("conv1", "bn1", "conv2", "bn2", "relu", "layer1", "transition1", "stage2", "transition2",
                     "stage3", "transition3", "stage4"):  # fmt: skip
            setattr(self, name, getattr(hr, name))
        self._backbone = [hr]  # a plain list: not a registered submodule (its parameters are the ones above)
        inp = int(sum(hr.stage_out_channels))
        self.num_joints = num_joints
        self.offset_prekpt = offset_channels_per_joint
        self.transition_heatmap = _transition(inp, heatmap_channels)
        self.transition_offset = _transition(inp, num_joints * offset_channels_per_joint)
        self.head_heatmap = nn.ModuleList([
            nn.Sequential(BasicBlock(heatmap_channels, heatmap_channels)),
            nn.Conv2d(heatmap_channels, num_joints + 1, kernel_size=1, stride=1, padding=0),
        ])  # fmt: skip
        c = offset_channels_per_joint
        self.offset_feature_layers = nn.ModuleList(
            [nn.Sequential(AdaptBlock(c, c), AdaptBlock(c, c)) for _ in range(num_joints)]
        )
        self.offset_final_layer = nn.ModuleList([nn.Conv2d(c, 2, 1, 1, 0) for _ in range(num_joints)])

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``(N, 3, H, W)`` → heatmaps ``(N, K+1, H/4, W/4)`` (centre last) and offsets ``(N, 2K, H/4, W/4)``."""
        ys = self._backbone[0].backbone(x)
        h, w = ys[0].shape[2], ys[0].shape[3]
        feats = torch.cat([ys[0], *(F.interpolate(y, size=(h, w), mode="bilinear", align_corners=False) for y in ys[1:])], 1)
        heatmap = self.head_heatmap[1](self.head_heatmap[0](self.transition_heatmap(feats)))
        off = self.transition_offset(feats)
        c = self.offset_prekpt
        offsets = [
            self.offset_final_layer[j](self.offset_feature_layers[j](off[:, j * c : (j + 1) * c]))
            for j in range(self.num_joints)
        ]
        return heatmap, torch.cat(offsets, dim=1)


@register_net("dekr", filters={"dekr": strip_module_prefix}, stride=32, outputs=lambda o: tuple(o))
def dekr(
    stage_channels: Sequence[Sequence[int]],
    stage_modules: Sequence[int] = (1, 4, 3),
    stage_blocks: Sequence[int] = (4, 4, 4),
    num_joints: int = 17,
    heatmap_channels: int = 32,
    offset_channels_per_joint: int = 15,
) -> DEKR:
    return DEKR(stage_channels, stage_modules, stage_blocks, num_joints, heatmap_channels, offset_channels_per_joint)


__all__ = ["DEKR", "AdaptBlock", "dekr"]
