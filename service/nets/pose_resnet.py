"""SimpleBaseline (``PoseResNet``, Xiao et al. 2018) as DarkPose's ``lib/models/pose_resnet.py`` builds it.

A torchvision-layout ResNet (v1.5: the stride on the 3x3 ``conv2``; convs without bias; stem ``conv1`` 7x7 s2,
``bn1``, ReLU, max-pool 3x3 s2 p1, then ``layer1..4``; output stride 32) followed by a deconvolution head:
``NUM_DECONV_LAYERS`` x (``ConvTranspose2d(stride 2, bias=False)`` + BN + ReLU) and a ``final_layer`` conv **with**
bias. Module names and registration order equal the official ``state_dict`` (338 / 644 / 950 entries for
depths 50 / 101 / 152). Shapes: ``(B, 3, H, W)`` normalised → ``(B, K, H/4, W/4)`` heatmaps (three x2 deconvs on
the stride-32 features).

Checkpoint filters: ``darkpose`` (the official layout), ``mmpose`` (``backbone.X`` → ``X``;
``head.``/``keypoint_head.`` + ``deconv_layers``/``final_layer`` → the same names).
"""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor, nn

from ._registry import StateDict, register_net, strip_module_prefix

#: depth → blocks per stage (Bottleneck, expansion 4), as ``resnet_spec`` in the official file
DEPTHS: dict[int, tuple[int, int, int, int]] = {50: (3, 4, 6, 3), 101: (3, 4, 23, 3), 152: (3, 8, 36, 3)}
#: deconvolution kernel → (padding, output_padding), the official ``_get_deconv_cfg``
DECONV_PADDING: dict[int, tuple[int, int]] = {4: (1, 0), 3: (1, 1), 2: (0, 0)}


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, downsample: nn.Module | None = None):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, kernel_size=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, kernel_size=3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * self.expansion, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: Tensor) -> Tensor:
        residual = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            residual = self.downsample(x)
        out = out + residual
        result: Tensor = self.relu(out)
        return result


class PoseResNet(nn.Module):
    """ResNet backbone + deconvolution head (``(B, 3, H, W)`` → ``(B, num_joints, H/4, W/4)``)."""

    def __init__(
        self,
        depth: int,
        num_joints: int,
        deconv_filters: Sequence[int],
        deconv_kernels: Sequence[int],
        final_conv_kernel: int,
        deconv_with_bias: bool,
    ) -> None:
        super().__init__()
        if depth not in DEPTHS:
            raise ValueError(f"pose_resnet depth must be one of {sorted(DEPTHS)}, got {depth}")
        if len(deconv_filters) != len(deconv_kernels):
            raise ValueError("deconv_filters and deconv_kernels must have one entry per deconv layer")
        self.inplanes = 64
        self.conv1 = nn.Conv2d(3, 64, kernel_size=7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        blocks = DEPTHS[depth]
        self.layer1 = self._make_layer(64, blocks[0])
        self.layer2 = self._make_layer(128, blocks[1], stride=2)
        self.layer3 = self._make_layer(256, blocks[2], stride=2)
        self.layer4 = self._make_layer(512, blocks[3], stride=2)
        layers: list[nn.Module] = []
        for planes, kernel in zip(deconv_filters, deconv_kernels, strict=True):
            if kernel not in DECONV_PADDING:
                raise ValueError(f"deconv kernel must be one of {sorted(DECONV_PADDING)}, got {kernel}")
            padding, output_padding = DECONV_PADDING[kernel]
            layers += [
                nn.ConvTranspose2d(self.inplanes, planes, kernel_size=kernel, stride=2, padding=padding,
                                   output_padding=output_padding, bias=deconv_with_bias),
                nn.BatchNorm2d(planes),
                nn.ReLU(inplace=True),
            ]  # fmt: skip
            self.inplanes = planes
        self.deconv_layers = nn.Sequential(*layers)
        self.final_layer = nn.Conv2d(
            self.inplanes, num_joints, kernel_size=final_conv_kernel, stride=1,
            padding=1 if final_conv_kernel == 3 else 0,
        )  # fmt: skip

    def _make_layer(self, planes: int, blocks: int, stride: int = 1) -> nn.Sequential:
        downsample = None
        if stride != 1 or self.inplanes != planes * Bottleneck.expansion:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * Bottleneck.expansion, kernel_size=1, stride=stride, bias=False),
                nn.BatchNorm2d(planes * Bottleneck.expansion),
            )
        layers = [Bottleneck(self.inplanes, planes, stride, downsample)]
        self.inplanes = planes * Bottleneck.expansion
        layers += [Bottleneck(self.inplanes, planes) for _ in range(1, blocks)]
        return nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        out: Tensor = self.final_layer(self.deconv_layers(x))
        return out


def filter_mmpose(sd: StateDict) -> StateDict:
    """MMPose ``TopdownPoseEstimator(ResNet, HeatmapHead)``: ``backbone.X`` → ``X``; ``head.X`` (1.x) or
    ``keypoint_head.X`` (0.x) → ``X`` (the head's ``deconv_layers`` and ``final_layer`` keep their names).
    Other keys are left as they are, so strict loading reports them."""
    out: StateDict = {}
    for k, v in strip_module_prefix(sd).items():
        for prefix in ("backbone.", "keypoint_head.", "head."):
            if k.startswith(prefix):
                k = k[len(prefix) :]
                break
        out[k] = v
    return out


@register_net("pose_resnet", filters={"mmpose": filter_mmpose}, stride=32)
def pose_resnet(
    depth: int = 50,
    num_joints: int = 17,
    deconv_filters: Sequence[int] = (256, 256, 256),
    deconv_kernels: Sequence[int] = (4, 4, 4),
    final_conv_kernel: int = 1,
    deconv_with_bias: bool = False,
) -> PoseResNet:
    return PoseResNet(depth, num_joints, deconv_filters, deconv_kernels, final_conv_kernel, deconv_with_bias)


__all__ = ["PoseResNet", "filter_mmpose", "pose_resnet"]
