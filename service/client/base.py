"""The client protocol and its error type."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from ..schemas import PoseOptions, PoseResult

Boxes = Sequence[Sequence[float]] | None


class ClientError(Exception):
    """A request failed. ``code`` is the server's stable error code (e.g. ``overloaded``), ``status`` the
    HTTP status or gRPC status name, ``retry_after_s`` the server's hint when it was overloaded."""

    def __init__(
        self, code: str, message: str, status: str | int, retry_after_s: float | None = None
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.code = code
        self.message = message
        self.status = status
        self.retry_after_s = retry_after_s


class PoseClient(Protocol):
    def estimate(
        self,
        image: bytes,
        boxes: Boxes = None,
        options: PoseOptions | None = None,
        timeout_s: float | None = None,
        model: str | None = None,
    ) -> PoseResult:
        """One image; ``model``: a served model's name (``None`` = the server's default)."""
        ...

    def estimate_batch(
        self,
        images: Sequence[bytes],
        options: PoseOptions | None = None,
        timeout_s: float | None = None,
        model: str | None = None,
    ) -> list[PoseResult | ClientError]: ...

    def close(self) -> None: ...
