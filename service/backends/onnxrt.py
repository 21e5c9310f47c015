"""ONNX Runtime: the ``onnxruntime`` backend (CPU execution provider; CUDA provider on a CUDA device) and the
``tensorrt`` backend (its TensorRT provider: fp16 engine, optimisation profile sized to the engine's batch,
engines cached next to the export).

CPU sessions run ``threads`` intra-op threads that do not spin-wait (``session.intra_op.allow_spinning =
0``) and one inter-op thread, with every graph optimisation on (BatchNorm folding, Conv+activation fusion,
NCHWc layouts).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from .base import BackendOptions, BackendUnavailable, register_backend
from .export import INPUT_NAME, cached_onnx
from .threads import cpu_thread_budget


def _ort() -> Any:
    try:
        import onnxruntime as ort
    except ImportError:
        raise BackendUnavailable(
            "backend onnxruntime is not installed: pip install onnxruntime (CPU) or onnxruntime-gpu (CUDA), "
            "or set POSESVC_MODEL__BACKEND=torch"
        ) from None
    return ort


class OnnxRuntimeBackend:
    """An ONNX Runtime session over the card's exported network.

    Attributes:
        path: the ONNX file served; export: its cache record (``max_diff`` vs torch, ...); threads: intra-op
        threads (CPU).
    """

    def __init__(
        self, name: str, path: Any, export: dict[str, Any], device: torch.device, providers: list[Any], threads: int
    ) -> None:
        ort = _ort()
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        so.intra_op_num_threads = threads
        so.inter_op_num_threads = 1
        so.add_session_config_entry("session.intra_op.allow_spinning", "0")
        so.add_session_config_entry("session.inter_op.allow_spinning", "0")
        so.log_severity_level = 3
        self.name = name
        self.device = device
        self.path = path
        self.export = export
        self.threads = threads
        self.session = ort.InferenceSession(str(path), so, providers=providers)
        self.providers = list(self.session.get_providers())
        wanted = providers[0][0] if isinstance(providers[0], tuple) else providers[0]
        if self.providers[0] != wanted:
            raise BackendUnavailable(
                f"backend {name}: ONNX Runtime did not start {wanted} (it runs {self.providers}); "
                "install the matching onnxruntime build or choose another backend"
            )

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        """``(B, 3, H, W)`` float32 → the family's outputs as float32 tensors on ``device`` (on CUDA the batch
        goes through host memory: ONNX Runtime's Python API takes NumPy arrays)."""
        arr = np.ascontiguousarray(x.detach().to("cpu", torch.float32).numpy())
        outs = self.session.run(None, {INPUT_NAME: arr})
        return tuple(torch.from_numpy(np.asarray(o, dtype=np.float32)).to(self.device) for o in outs)


def _spec(name: str, options: BackendOptions) -> Any:
    if options.export is None:
        raise BackendUnavailable(f"backend {name} needs an export spec (model card, input size, cache folder)")
    return options.export


@register_backend("onnxruntime")
def load(net: nn.Module, device: torch.device, options: BackendOptions) -> OnnxRuntimeBackend:
    ort = _ort()
    if options.precision != "fp32":
        raise BackendUnavailable(f"backend onnxruntime runs fp32 only (asked for {options.precision})")
    path, meta = cached_onnx(net, _spec("onnxruntime", options))
    if device.type == "cuda":
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise BackendUnavailable("backend onnxruntime on CUDA needs onnxruntime-gpu (CUDAExecutionProvider)")
        providers: list[Any] = [("CUDAExecutionProvider", {"device_id": device.index or 0}), "CPUExecutionProvider"]
    else:
        providers = ["CPUExecutionProvider"]
    threads = options.threads or cpu_thread_budget()
    return OnnxRuntimeBackend("onnxruntime", path, meta, device, providers, threads)


@register_backend("tensorrt")
def load_tensorrt(net: nn.Module, device: torch.device, options: BackendOptions) -> OnnxRuntimeBackend:
    ort = _ort()
    if device.type != "cuda":
        raise BackendUnavailable("backend tensorrt needs a CUDA device")
    if "TensorrtExecutionProvider" not in ort.get_available_providers():
        raise BackendUnavailable(
            "backend tensorrt needs onnxruntime-gpu built with TensorRT (TensorrtExecutionProvider) and the "
            "TensorRT libraries; or set POSESVC_MODEL__BACKEND=torch"
        )
    spec = _spec("tensorrt", options)
    path, meta = cached_onnx(net, spec)
    w, h = spec.input_size
    trt = {
        "device_id": device.index or 0,
        "trt_fp16_enable": options.precision == "fp16",
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": str(path.parent / "trt"),
        "trt_profile_min_shapes": f"{INPUT_NAME}:1x3x{h}x{w}",
        "trt_profile_opt_shapes": f"{INPUT_NAME}:{max(1, spec.max_batch // 2)}x3x{h}x{w}",
        "trt_profile_max_shapes": f"{INPUT_NAME}:{spec.max_batch}x3x{h}x{w}",
    }
    providers: list[Any] = [("TensorrtExecutionProvider", trt), ("CUDAExecutionProvider", {"device_id": trt["device_id"]})]
    return OnnxRuntimeBackend("tensorrt", path, meta, device, providers, options.threads or cpu_thread_budget())
