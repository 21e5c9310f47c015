"""Eager PyTorch: the reference backend (the official code's numerics), on any torch device; on CUDA optionally
``torch.compile`` (``reduce-overhead``: CUDA graphs) with batches padded to fixed buckets, so every shape the
engine sends was compiled once at warm-up."""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any

import torch
from torch import Tensor, nn

from ..nets._registry import as_tuple, entry_of
from .base import BackendOptions, BackendUnavailable, register_backend
from .threads import apply_torch_threads, cpu_thread_budget

#: batch sizes compiled once each when ``compile`` is on; a batch is padded up to the next one
BUCKETS: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64, 128)


class TorchBackend:
    """``net`` in eval mode on ``device``; fp32, or bf16/fp16 autocast; optional channels_last.

    Attributes:
        net: the module (its family's output adapter maps its raw output to a tuple of tensors).
    """

    name = "torch"

    def __init__(self, net: nn.Module, device: torch.device, options: BackendOptions) -> None:
        if options.precision == "fp16" and device.type != "cuda":
            raise ValueError("fp16 precision needs a CUDA device; use bf16 on CPU")
        self.device = device
        self.options = options
        self.net = net.eval().to(device)
        if options.channels_last:
            self.net = self.net.to(memory_format=torch.channels_last)
        entry = entry_of(net)
        self._outputs = entry.outputs if entry is not None else as_tuple
        self.threads = 0
        if device.type == "cpu":
            self.threads = options.threads or cpu_thread_budget()
            apply_torch_threads(self.threads)
        self._module: Any = self.net
        if options.compile:
            if device.type != "cuda":
                raise BackendUnavailable("torch compile (CUDA graphs) needs a CUDA device")
            self._module = torch.compile(self.net, mode="reduce-overhead", dynamic=False)

    def _autocast(self) -> AbstractContextManager[Any]:
        p = self.options.precision
        if p == "fp32":
            return nullcontext()
        dtype = torch.bfloat16 if p == "bf16" else torch.float16
        return torch.autocast(self.device.type, dtype=dtype)

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        """``(B, 3, H_in, W_in)`` normalised float32 → the family's outputs, float32."""
        n = x.shape[0]
        if self.options.compile:  # pad to the bucket: one compiled graph per bucket, none per odd size
            bucket = next((b for b in BUCKETS if b >= n), n)
            if bucket > n:
                x = torch.cat([x, x.new_zeros((bucket - n, *x.shape[1:]))])
        if self.options.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.inference_mode(), self._autocast():
            out = self._outputs(self._module(x))
        return tuple(t[:n].float() for t in out)


@register_backend("torch")
def load(net: nn.Module, device: torch.device, options: BackendOptions) -> TorchBackend:
    return TorchBackend(net, device, options)
