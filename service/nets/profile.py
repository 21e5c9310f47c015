"""Size of a network: parameters and multiply-adds (the "GFLOPs" that pose papers and the DarkPose tables
report are multiply-accumulates of the convolution and linear layers for one input)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


def count_params(net: nn.Module) -> int:
    """Learnable parameters (BatchNorm running statistics are buffers, not counted)."""
    return sum(p.numel() for p in net.parameters())


def count_macs(net: nn.Module, input_size: tuple[int, int]) -> int:
    """Multiply-adds of every ``Conv2d``, ``ConvTranspose2d`` and ``Linear`` for one ``(1, 3, H, W)`` input.

    ``input_size``: ``(W, H)`` px. Bias additions, normalisation, activations, pooling and upsampling are not
    counted (as in the papers' tables).
    """
    total = 0

    def conv(m: nn.Conv2d, _inp: Any, out: torch.Tensor) -> None:
        nonlocal total
        kh, kw = m.kernel_size
        total += out.numel() * (m.in_channels // m.groups) * kh * kw

    def deconv(m: nn.ConvTranspose2d, inp: Any, _out: torch.Tensor) -> None:
        nonlocal total
        kh, kw = m.kernel_size
        total += inp[0].numel() * (m.out_channels // m.groups) * kh * kw

    def linear(m: nn.Linear, _inp: Any, out: torch.Tensor) -> None:
        nonlocal total
        total += out.numel() * m.in_features

    hooks = []
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv))
        elif isinstance(m, nn.ConvTranspose2d):
            hooks.append(m.register_forward_hook(deconv))
        elif isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(linear))
    w, h = input_size
    was_training = net.training
    try:
        net.eval()
        with torch.inference_mode():
            net(torch.zeros(1, 3, h, w))
    finally:
        for hk in hooks:
            hk.remove()
        net.train(was_training)
    return total
