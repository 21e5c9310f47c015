"""Stacked Hourglass (Newell et al. 2016) as DarkPose's ``lib/models/hourglass.py`` builds it.

Pre-activation ``Bottleneck`` (BN → ReLU → conv, convs **with** bias, ``expansion = 2``); stem ``conv1`` 7x7 s2
(with bias), ``bn1``, ReLU, ``layer1``, max-pool 2x2, ``layer2``, ``layer3``; then ``num_stacks`` hourglasses of
depth 4, each followed by ``res``, ``fc`` (conv → BN → ReLU) and a 1x1 ``score`` conv, with ``fc_`` / ``score_``
feeding the next stack. Module names and order equal the official ``state_dict`` (1298 / 2526 entries for 4 / 8
stacks). Shapes: ``(B, 3, H, W)`` → a list of ``num_stacks`` heatmaps ``(B, K, H/4, W/4)``, stack 0 first; only
the last is decoded (the family's output adapter).

The official file exists in two forward variants with identical keys: the 2020 one upsamples every level by 2
(runs at 256x192, 256x256, ...), the 2021 one (HEAD) upsamples the innermost level to a fixed ``[4, 3]`` (the
only one that runs at 128x96). The card chooses with ``innermost_size`` (``[4, 3]`` or absent).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch.nn.functional as F
from torch import Tensor, nn

from ._registry import register_net


class Bottleneck(nn.Module):
    expansion = 2

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes)
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=True)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=True)
        self.bn3 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 2, kernel_size=1, bias=True)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        residual = x
        out = self.conv1(self.relu(self.bn1(x)))
        out = self.conv2(self.relu(self.bn2(out)))
        out = self.conv3(self.relu(self.bn3(out)))
        if self.downsample is not None:
            residual = self.downsample(x)
        result: Tensor = out + residual
        return result


def _residual(planes: int, num_blocks: int) -> nn.Sequential:
    return nn.Sequential(*[Bottleneck(planes * Bottleneck.expansion, planes) for _ in range(num_blocks)])


class Hourglass(nn.Module):
    """One hourglass of ``depth`` levels; ``innermost_size`` (H, W) fixes the innermost upsampling (2021)."""

    def __init__(self, num_blocks: int, planes: int, depth: int, innermost_size: Sequence[int] | None) -> None:
        super().__init__()
        self.depth = depth
        self.innermost_size = None if innermost_size is None else (int(innermost_size[0]), int(innermost_size[1]))
        levels = []
        for i in range(depth):
            groups = [_residual(planes, num_blocks) for _ in range(4 if i == 0 else 3)]
            levels.append(nn.ModuleList(groups))
        self.hg = nn.ModuleList(levels)

    def _forward(self, n: int, x: Tensor) -> Tensor:
        level: Any = self.hg[n - 1]
        up1 = level[0](x)
        low1 = level[1](F.max_pool2d(x, 2, stride=2))
        low2 = self._forward(n - 1, low1) if n > 1 else level[3](low1)
        low3 = level[2](low2)
        if n > 1 or self.innermost_size is None:
            up2 = F.interpolate(low3, scale_factor=2.0, mode="nearest")
        else:
            up2 = F.interpolate(low3, size=self.innermost_size, mode="nearest")
        out: Tensor = up1 + up2
        return out

    def forward(self, x: Tensor) -> Tensor:
        return self._forward(self.depth, x)


class HourglassNet(nn.Module):
    """``(B, 3, H, W)`` → ``[stack 0, ..., stack S-1]`` heatmaps ``(B, num_joints, H/4, W/4)``."""

    def __init__(
        self, num_stacks: int, num_blocks: int, num_features: int, num_joints: int,
        innermost_size: Sequence[int] | None,
    ) -> None:  # fmt: skip
        super().__init__()
        self.inplanes = num_features // 4
        self.num_feats = num_features // 2
        self.num_stacks = num_stacks
        self.conv1 = nn.Conv2d(3, self.inplanes, kernel_size=7, stride=2, padding=3, bias=True)
        self.bn1 = nn.BatchNorm2d(self.inplanes)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_residual(self.inplanes, 1)
        self.layer2 = self._make_residual(self.inplanes, 1)
        self.layer3 = self._make_residual(self.num_feats, 1)
        self.maxpool = nn.MaxPool2d(2, stride=2)
        ch = self.num_feats * Bottleneck.expansion
        hg, res, fc, score, fc_, score_ = [], [], [], [], [], []
        for i in range(num_stacks):
            hg.append(Hourglass(num_blocks, self.num_feats, 4, innermost_size))
            res.append(self._make_residual(self.num_feats, num_blocks))
            fc.append(nn.Sequential(nn.Conv2d(ch, ch, kernel_size=1, bias=True), nn.BatchNorm2d(ch), self.relu))
            score.append(nn.Conv2d(ch, num_joints, kernel_size=1, bias=True))
            if i < num_stacks - 1:
                fc_.append(nn.Conv2d(ch, ch, kernel_size=1, bias=True))
                score_.append(nn.Conv2d(num_joints, ch, kernel_size=1, bias=True))
        self.hg = nn.ModuleList(hg)
        self.res = nn.ModuleList(res)
        self.fc = nn.ModuleList(fc)
        self.score = nn.ModuleList(score)
        self.fc_ = nn.ModuleList(fc_)
        self.score_ = nn.ModuleList(score_)

    def _make_residual(self, planes: int, num_blocks: int) -> nn.Sequential:
        downsample = None
        if self.inplanes != planes * Bottleneck.expansion:
            downsample = nn.Sequential(nn.Conv2d(self.inplanes, planes * Bottleneck.expansion, kernel_size=1, bias=True))
        layers = [Bottleneck(self.inplanes, planes, 1, downsample)]
        self.inplanes = planes * Bottleneck.expansion
        layers += [Bottleneck(self.inplanes, planes) for _ in range(1, num_blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> list[Tensor]:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.maxpool(self.layer1(x))))
        out = []
        for i in range(self.num_stacks):
            y = self.fc[i](self.res[i](self.hg[i](x)))
            score = self.score[i](y)
            out.append(score)
            if i < self.num_stacks - 1:
                x = x + self.fc_[i](y) + self.score_[i](score)
        return out


def last_stack(outputs: Any) -> tuple[Tensor, ...]:
    """Only the last stack's heatmaps are decoded (the official test path uses ``outputs[-1]``)."""
    return (outputs[-1],)


@register_net("hourglass", stride=32, outputs=last_stack)
def hourglass(
    num_stacks: int = 4,
    num_blocks: int = 1,
    num_features: int = 256,
    num_joints: int = 17,
    innermost_size: Sequence[int] | None = None,
) -> HourglassNet:
    return HourglassNet(num_stacks, num_blocks, num_features, num_joints, innermost_size)


__all__ = ["HourglassNet", "hourglass", "last_stack"]
