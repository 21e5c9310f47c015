"""Error hierarchy shared by every layer.

Each error carries a stable ``code`` (used as the RFC 9457 problem ``type`` suffix over REST, mapped to a
gRPC status code over gRPC, and as the ``reason`` label of rejection metrics) and a human message that
names the problem.
"""

from __future__ import annotations


class PoseServiceError(Exception):
    """Base class. ``code`` is stable and machine-readable; ``str(err)`` is for humans."""

    code: str = "internal"
    #: Whether the client caused it (4xx / INVALID_ARGUMENT family) or the server did.
    client_error: bool = False

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInput(PoseServiceError):
    """The request is malformed (bad boxes, bad options)."""

    code = "invalid_input"
    client_error = True


class BoxesNotSupported(InvalidInput):
    """Person boxes sent to a bottom-up model (it finds the persons itself)."""

    code = "boxes_not_supported"


class InvalidBoxes(InvalidInput):
    code = "invalid_boxes"


class UndecodableImage(InvalidInput):
    code = "undecodable_image"


class UnsupportedMediaType(InvalidInput):
    code = "unsupported_media_type"


class ImageTooLarge(InvalidInput):
    code = "image_too_large"


class PayloadTooLarge(InvalidInput):
    code = "payload_too_large"


class Overloaded(PoseServiceError):
    """The queue is full; retry after ``retry_after_s`` seconds."""

    code = "overloaded"

    def __init__(self, message: str, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class StreamLimitExceeded(PoseServiceError):
    """The client already has the maximum number of concurrent streams open."""

    code = "stream_limit"
    client_error = True

    def __init__(self, message: str, retry_after_s: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class DeadlineExceeded(PoseServiceError):
    code = "deadline_exceeded"


class UnknownModel(PoseServiceError):
    """The request names a model this server does not serve (404 / NOT_FOUND); the message names those served."""

    code = "unknown_model"
    client_error = True


class NotReady(PoseServiceError):
    code = "not_ready"


class EngineError(PoseServiceError):
    """The compute side failed (a worker crashed or the forward raised)."""

    code = "engine_error"


class CheckpointError(PoseServiceError):
    """A checkpoint does not match the architecture (lists the missing/unexpected keys)."""

    code = "checkpoint_mismatch"


class WeightsError(PoseServiceError):
    """Weights are missing, corrupted, or could not be fetched."""

    code = "weights_error"


class CardError(PoseServiceError):
    """A model card is missing or malformed."""

    code = "card_error"


class BackendError(PoseServiceError):
    """The inference backend asked for cannot run here (not installed, no suitable device, or it failed its
    start-up check against torch); the message names it and the fix."""

    code = "backend_unavailable"
