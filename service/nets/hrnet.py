"""HRNet (PoseHighResolutionNet), key-for-key compatible with the official checkpoints.

Module names and registration order equal ``lib/models/pose_hrnet.py`` of the official HRNet / DarkPose
code, so ``state_dict()`` keys and shapes match ``keys_w32.json`` / ``keys_w48.json`` exactly. The stem
(64 channels) and ``layer1`` (4 Bottlenecks, 64 → 256) are fixed, as in the official code; stages 2–4
are configurable (widths, modules, blocks).

Input ``(N, 3, H_in, W_in)`` normalised RGB, H_in and W_in multiples of 32. Output ``(N, K, H_in/4,
W_in/4)`` raw heatmaps (no activation).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from torch import Tensor, nn

from ._registry import StateDict, register_net, strip_module_prefix

BN_MOMENTUM = 0.1


def _conv3x3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, kernel_size=3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = _conv3x3(inplanes, planes, stride)
        self.bn1 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = _conv3x3(planes, planes)
        self.bn2 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        result: Tensor = self.relu(out + residual)
        return result


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, momentum=BN_MOMENTUM)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        residual = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        result: Tensor = self.relu(out + residual)
        return result


class HighResolutionModule(nn.Module):
    """Parallel branches of BasicBlocks followed by the all-to-all fuse (sum, then ReLU)."""

    def __init__(
        self,
        num_blocks: Sequence[int],
        num_inchannels: list[int],
        num_channels: Sequence[int],
        multi_scale_output: bool = True,
    ) -> None:
        super().__init__()
        self.num_branches = len(num_channels)
        self.num_inchannels = list(num_inchannels)
        self.multi_scale_output = multi_scale_output
        self.branches = nn.ModuleList(
            [self._make_one_branch(i, num_blocks[i], num_channels[i]) for i in range(self.num_branches)]
        )
        self.fuse_layers = self._make_fuse_layers()
        self.relu = nn.ReLU(inplace=False)

    def _make_one_branch(self, index: int, blocks: int, channels: int) -> nn.Sequential:
        downsample = None
        if self.num_inchannels[index] != channels * BasicBlock.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.num_inchannels[index], channels, kernel_size=1, bias=False),
                nn.BatchNorm2d(channels, momentum=BN_MOMENTUM),
            )
        layers: list[nn.Module] = [BasicBlock(self.num_inchannels[index], channels, 1, downsample)]
        self.num_inchannels[index] = channels * BasicBlock.expansion
        layers += [BasicBlock(self.num_inchannels[index], channels) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def _make_fuse_layers(self) -> nn.ModuleList | None:
        if self.num_branches == 1:
            return None
        cin = self.num_inchannels
        fuse_layers = []
        for i in range(self.num_branches if self.multi_scale_output else 1):
            row: list[nn.Module | None] = []
            for j in range(self.num_branches):
                if j > i:
                    row.append(
                        nn.Sequential(
                            nn.Conv2d(cin[j], cin[i], 1, 1, 0, bias=False),
                            nn.BatchNorm2d(cin[i]),
                            nn.Upsample(scale_factor=2 ** (j - i), mode="nearest"),
                        )
                    )
                elif j == i:
                    row.append(None)
                else:
                    convs: list[nn.Module] = []
                    for k in range(i - j):
                        if k == i - j - 1:
                            convs.append(
                                nn.Sequential(
                                    nn.Conv2d(cin[j], cin[i], 3, 2, 1, bias=False), nn.BatchNorm2d(cin[i])
                                )
                            )
                        else:
                            convs.append(
                                nn.Sequential(
                                    nn.Conv2d(cin[j], cin[j], 3, 2, 1, bias=False),
                                    nn.BatchNorm2d(cin[j]),
                                    nn.ReLU(True),
                                )
                            )
                    row.append(nn.Sequential(*convs))
            fuse_layers.append(nn.ModuleList(row))  # type: ignore[arg-type]  # None = identity, as official
        return nn.ModuleList(fuse_layers)

    def forward(self, x: list[Tensor]) -> list[Tensor]:
        if self.num_branches == 1:
            return [self.branches[0](x[0])]
        x = [branch(xi) for branch, xi in zip(self.branches, x, strict=True)]
        assert self.fuse_layers is not None
        out = []
        for i, fuse in enumerate(self.fuse_layers):
            row = cast(nn.ModuleList, fuse)
            y = x[0] if i == 0 else row[0](x[0])
            for j in range(1, self.num_branches):
                y = y + x[j] if i == j else y + row[j](x[j])
            out.append(self.relu(y))
        return out


class PoseHighResolutionNet(nn.Module):
    """HRNet for top-down pose: stem → layer1 → stages 2–4 → 1×1 ``final_layer`` on the highest branch.

    Args:
        stage_channels: branch widths of stages 2, 3, 4, e.g. ``[[32, 64], [32, 64, 128], [32, 64, 128, 256]]``.
        stage_modules: number of HighResolutionModules per stage, e.g. ``[1, 4, 3]``.
        stage_blocks: BasicBlocks per branch per stage, e.g. ``[4, 4, 4]``.
        num_joints: output channels K.
        final_conv_kernel: 1 (official COCO configs) or 3.
        multi_scale_last: the last stage keeps every branch (fuse layers for all of them), as bottom-up
            networks built on this backbone need (DEKR); the top-down net keeps only the highest resolution.
    """

    transition1: nn.ModuleList
    transition2: nn.ModuleList
    transition3: nn.ModuleList
    stage2: nn.Sequential
    stage3: nn.Sequential
    stage4: nn.Sequential

    def __init__(
        self,
        stage_channels: Sequence[Sequence[int]],
        stage_modules: Sequence[int] = (1, 4, 3),
        stage_blocks: Sequence[int] = (4, 4, 4),
        num_joints: int = 17,
        final_conv_kernel: int = 1,
        multi_scale_last: bool = False,
    ) -> None:
        super().__init__()
        if len(stage_channels) != 3 or len(stage_modules) != 3 or len(stage_blocks) != 3:
            raise ValueError("HRNet needs exactly three stage configurations (stages 2, 3, 4)")
        for s, ch in enumerate(stage_channels):
            if len(ch) != s + 2:
                raise ValueError(f"stage {s + 2} needs {s + 2} branch widths, got {list(ch)}")
        self.conv1 = nn.Conv2d(3, 64, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(64, momentum=BN_MOMENTUM)
        self.conv2 = nn.Conv2d(64, 64, kernel_size=3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(64, momentum=BN_MOMENTUM)
        self.relu = nn.ReLU(inplace=True)
        self.layer1 = self._make_layer(64, 64, 4)

        pre = [256]
        names = ("2", "3", "4")
        for s, (channels, modules, blocks) in enumerate(
            zip(stage_channels, stage_modules, stage_blocks, strict=True)
        ):
            channels = list(channels)
            setattr(self, f"transition{s + 1}", self._make_transition(pre, channels))
            stage, pre = self._make_stage(
                modules, [blocks] * len(channels), channels, multi_scale_output=s < 2 or multi_scale_last
            )
            setattr(self, f"stage{names[s]}", stage)
        self.stage_out_channels = pre
        self.final_layer = nn.Conv2d(
            pre[0],
            num_joints,
            kernel_size=final_conv_kernel,
            stride=1,
            padding=1 if final_conv_kernel == 3 else 0,
        )
        self.num_joints = num_joints

    @staticmethod
    def _make_layer(inplanes: int, planes: int, blocks: int) -> nn.Sequential:
        downsample = nn.Sequential(
            nn.Conv2d(inplanes, planes * Bottleneck.expansion, kernel_size=1, stride=1, bias=False),
            nn.BatchNorm2d(planes * Bottleneck.expansion, momentum=BN_MOMENTUM),
        )
        layers: list[nn.Module] = [Bottleneck(inplanes, planes, 1, downsample)]
        layers += [Bottleneck(planes * Bottleneck.expansion, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    @staticmethod
    def _make_transition(pre: list[int], cur: list[int]) -> nn.ModuleList:
        layers: list[nn.Module | None] = []
        for i, c in enumerate(cur):
            if i < len(pre):
                if c != pre[i]:
                    layers.append(
                        nn.Sequential(
                            nn.Conv2d(pre[i], c, 3, 1, 1, bias=False),
                            nn.BatchNorm2d(c),
                            nn.ReLU(inplace=True),
                        )
                    )
                else:
                    layers.append(None)
            else:
                convs: list[nn.Module] = []
                for j in range(i + 1 - len(pre)):
                    cin = pre[-1]
                    cout = c if j == i - len(pre) else cin
                    convs.append(
                        nn.Sequential(
                            nn.Conv2d(cin, cout, 3, 2, 1, bias=False),
                            nn.BatchNorm2d(cout),
                            nn.ReLU(inplace=True),
                        )
                    )
                layers.append(nn.Sequential(*convs))
        return nn.ModuleList(layers)  # type: ignore[arg-type]  # None = unchanged branch, as official

    @staticmethod
    def _make_stage(
        modules: int, blocks: list[int], channels: list[int], multi_scale_output: bool
    ) -> tuple[nn.Sequential, list[int]]:
        mods = []
        cin = list(channels)
        for i in range(modules):
            mso = multi_scale_output or i != modules - 1
            m = HighResolutionModule(blocks, cin, channels, mso)
            cin = m.num_inchannels
            mods.append(m)
        return nn.Sequential(*mods), cin

    @staticmethod
    def _transit(transition: nn.ModuleList, x: list[Tensor], n_new: int) -> list[Tensor]:
        out = []
        for i in range(n_new):
            t = transition[i]
            if t is None:
                out.append(x[i])
            else:
                # The official code feeds the *last* previous branch to every non-identity transition.
                out.append(t(x[-1]))
        return out

    def backbone(self, x: Tensor) -> list[Tensor]:
        """``(N, 3, H, W)`` → the last stage's branch outputs, highest resolution (H/4, W/4) first."""
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.relu(self.bn2(self.conv2(x)))
        x = self.layer1(x)
        ys = self._transit(self.transition1, [x], len(self.transition1))
        ys = self.stage2(ys)
        ys = self._transit(self.transition2, ys, len(self.transition2))
        ys = self.stage3(ys)
        ys = self._transit(self.transition3, ys, len(self.transition3))
        out: list[Tensor] = self.stage4(ys)
        return out

    def forward(self, x: Tensor) -> Tensor:
        """``(N, 3, H, W)`` → ``(N, K, H/4, W/4)`` heatmaps."""
        out: Tensor = self.final_layer(self.backbone(x)[0])
        return out


def filter_mmpose(sd: StateDict) -> StateDict:
    """MMPose top-down HRNet: ``backbone.X`` → ``X``; ``keypoint_head.final_layer.X`` (0.x) or
    ``head.final_layer.X`` (1.x) → ``final_layer.X``. Other keys are left as they are, so strict loading
    reports them as unexpected."""
    sd = strip_module_prefix(sd)
    out: StateDict = {}
    for k, v in sd.items():
        if k.startswith("backbone."):
            out[k[len("backbone.") :]] = v
        elif k.startswith("keypoint_head.final_layer."):
            out["final_layer." + k[len("keypoint_head.final_layer.") :]] = v
        elif k.startswith("head.final_layer."):
            out["final_layer." + k[len("head.final_layer.") :]] = v
        else:
            out[k] = v
    return out


@register_net("hrnet", filters={"hrnet": strip_module_prefix, "mmpose": filter_mmpose}, stride=32)
def hrnet(
    stage_channels: Sequence[Sequence[int]],
    stage_modules: Sequence[int] = (1, 4, 3),
    stage_blocks: Sequence[int] = (4, 4, 4),
    num_joints: int = 17,
    final_conv_kernel: int = 1,
) -> PoseHighResolutionNet:
    return PoseHighResolutionNet(stage_channels, stage_modules, stage_blocks, num_joints, final_conv_kernel)


def hrnet_widths(base: int) -> list[list[int]]:
    """Stage widths of the standard HRNet-W``base`` (e.g. 32 → [[32,64],[32,64,128],[32,64,128,256]])."""
    return [[base * 2**i for i in range(n)] for n in (2, 3, 4)]


__all__ = ["PoseHighResolutionNet", "hrnet", "hrnet_widths"]
