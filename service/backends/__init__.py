"""Inference backends: the network's forward pass behind one small protocol (:class:`Backend`).

``torch`` (eager PyTorch, the parity path), ``onnxruntime`` and ``openvino`` (CPU; one ONNX export, see
:mod:`.export`) and ``tensorrt`` (ONNX Runtime's TensorRT provider, CUDA) each live in a module of their own,
registered with :func:`register_backend` and imported lazily by :func:`load_backend`; :mod:`.select` resolves
``auto`` and checks a backend against torch at start-up.
"""

from .base import Backend, BackendOptions, BackendUnavailable, list_backends, load_backend, register_backend
from .export import ExportSpec

__all__ = [
    "Backend",
    "BackendOptions",
    "BackendUnavailable",
    "ExportSpec",
    "list_backends",
    "load_backend",
    "register_backend",
]
