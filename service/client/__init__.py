"""Python clients for a running posesvc server, returning typed :class:`~service.schemas.PoseResult` objects.

>>> from service.client import connect
>>> client = connect("http://127.0.0.1:8000")          # or "grpc://127.0.0.1:50051"
>>> result = client.estimate(open("photo.jpg", "rb").read(), boxes=[[280, 44, 218, 346, 0.99]])
>>> [p.score for p in result.persons]
"""

from __future__ import annotations

from .base import ClientError, PoseClient
from .grpc_client import GrpcPoseClient
from .http_client import HttpPoseClient


def connect(url: str, api_key: str | None = None, timeout_s: float = 60.0) -> PoseClient:
    """A client for ``http(s)://host:port`` (REST) or ``grpc://host:port`` (gRPC)."""
    if url.startswith(("http://", "https://")):
        return HttpPoseClient(url, api_key=api_key, timeout_s=timeout_s)
    if url.startswith("grpc://"):
        return GrpcPoseClient(url[len("grpc://") :], api_key=api_key, timeout_s=timeout_s)
    raise ClientError(
        "invalid_url", f"unsupported URL {url!r}: use http://host:port, https://host:port or grpc://host:port",
        "invalid",
    )  # fmt: skip


__all__ = ["ClientError", "GrpcPoseClient", "HttpPoseClient", "PoseClient", "connect"]
