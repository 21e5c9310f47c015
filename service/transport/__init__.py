"""Transports (HTTP, gRPC): bytes ↔ :class:`~service.schemas.PoseRequest` and
:class:`~service.schemas.PoseResult`.

They talk to the engine only through ``await engine.submit(request)`` and its readiness.
"""
