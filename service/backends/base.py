"""The backend protocol and its registry.

A backend runs the network and nothing else: normalised crops ``(B, 3, H_in, W_in)`` float32 on
``backend.device`` in, the family's raw outputs (a tuple of float32 tensors, heatmaps ``(B, K, H, W)``
first) out. Crops, flip test, decoding and post-processing stay in the estimator, whatever the backend.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from .export import ExportSpec

Precision = Literal["fp32", "bf16", "fp16"]


@dataclass(frozen=True)
class BackendOptions:
    """How to run the forward.

    Attributes:
        precision: ``fp32``; ``bf16`` autocast (CPU or CUDA); ``fp16`` autocast (CUDA only; TensorRT builds
            an fp16 engine).
        channels_last: NHWC memory format (torch).
        threads: intra-op CPU threads (``None``: the budget of :func:`~service.backends.threads.cpu_thread_budget`).
        export: what exporting backends (ONNX Runtime, OpenVINO, TensorRT) need: the model's name, cache key
            and input size, the export cache folder (``None``: they cannot run).
        compile: torch on CUDA: ``torch.compile`` (``reduce-overhead``: CUDA graphs) with batches padded to
            fixed buckets.
    """

    precision: Precision = "fp32"
    channels_last: bool = False
    threads: int | None = None
    export: ExportSpec | None = None
    compile: bool = False


class BackendUnavailable(RuntimeError):
    """A backend cannot run here (not installed, no suitable device, failed its start-up check); the message
    names the backend and the fix."""


@runtime_checkable
class Backend(Protocol):
    """A loaded network on one device."""

    #: registry name (``torch``, ...), reported by ``/v1/models`` and the logs
    name: str
    #: where inputs must already be
    device: torch.device

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        """``(B, 3, H_in, W_in)`` normalised float32 → raw outputs, float32, heatmaps first."""
        ...


#: ``loader(net, device, options) -> Backend``: ``net`` is the family's module with its weights loaded
BackendLoader = Callable[[nn.Module, torch.device, BackendOptions], Backend]

_BACKENDS: dict[str, BackendLoader] = {}
#: backends that live in their own module, imported on first use
_LAZY: dict[str, str] = {
    "torch": "service.backends.torch_eager",
    "onnxruntime": "service.backends.onnxrt",
    "tensorrt": "service.backends.onnxrt",
    "openvino": "service.backends.openvino",
}


def register_backend(name: str) -> Callable[[BackendLoader], BackendLoader]:
    def deco(loader: BackendLoader) -> BackendLoader:
        if name in _BACKENDS:
            raise ValueError(f"backend {name!r} is already registered")
        _BACKENDS[name] = loader
        return loader

    return deco


def list_backends() -> list[str]:
    return sorted(set(_BACKENDS) | set(_LAZY))


def load_backend(name: str, net: nn.Module, device: str | torch.device, options: BackendOptions) -> Backend:
    """The backend ``name`` running ``net`` on ``device``."""
    if name not in _BACKENDS and name in _LAZY:
        importlib.import_module(_LAZY[name])
    try:
        loader = _BACKENDS[name]
    except KeyError:
        raise ValueError(f"unknown backend {name!r}; known: {', '.join(list_backends())}") from None
    return loader(net, torch.device(device), options)
