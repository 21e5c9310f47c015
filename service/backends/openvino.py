"""OpenVINO on CPU: the ``openvino`` backend.

The exported ONNX file is read and compiled in memory (never saved as IR: ``save_model`` would round the
weights to fp16 by default), with the LATENCY hint, one stream of ``threads`` inference threads and f32
inference precision (no bf16: this class of CPU has no native bf16, and emulation is far slower).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .base import BackendOptions, BackendUnavailable, register_backend
from .export import cached_onnx
from .threads import cpu_thread_budget


class OpenVinoBackend:
    """A compiled OpenVINO model and one synchronous infer request (the engine runs one forward at a time
    per device)."""

    name = "openvino"

    def __init__(self, path: Any, export: dict[str, Any], device: torch.device, threads: int) -> None:
        try:
            import openvino as ov
        except ImportError:
            raise BackendUnavailable(
                "backend openvino is not installed: pip install openvino, or set POSESVC_MODEL__BACKEND=torch"
            ) from None
        core = ov.Core()
        model = core.read_model(str(path))
        config = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": "1", "INFERENCE_NUM_THREADS": str(threads),
                  "INFERENCE_PRECISION_HINT": "f32"}  # fmt: skip
        self.compiled = core.compile_model(model, "CPU", config)
        self.request = self.compiled.create_infer_request()
        self.device = device
        self.path = path
        self.export = export
        self.threads = threads

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        arr = np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())
        result = self.request.infer({0: arr})
        return tuple(torch.from_numpy(np.array(result[out], dtype=np.float32)) for out in self.compiled.outputs)


@register_backend("openvino")
def load(net: nn.Module, device: torch.device, options: BackendOptions) -> OpenVinoBackend:
    if device.type != "cpu":
        raise BackendUnavailable(f"backend openvino runs on the CPU here (asked for {device})")
    if options.precision != "fp32":
        raise BackendUnavailable(f"backend openvino runs fp32 only (asked for {options.precision})")
    if options.export is None:
        raise BackendUnavailable("backend openvino needs an export spec (model card, input size, cache folder)")
    path, meta = cached_onnx(net, options.export)
    return OpenVinoBackend(path, meta, device, options.threads or cpu_thread_budget())
