"""Inference backends: the network's forward pass behind one small protocol (:class:`Backend`).

``torch`` (eager PyTorch, the parity path) is built in; further backends register themselves with
:func:`register_backend` in a module of their own and are imported lazily by :func:`load_backend`.
"""

from .base import Backend, BackendOptions, list_backends, load_backend, register_backend

__all__ = ["Backend", "BackendOptions", "list_backends", "load_backend", "register_backend"]
