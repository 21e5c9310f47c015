"""The HTTP transport (FastAPI): :func:`~service.transport.http.app.create_app`."""

from .app import create_app

__all__ = ["create_app"]
