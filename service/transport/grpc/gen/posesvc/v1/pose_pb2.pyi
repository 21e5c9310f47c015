from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DropPolicy(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BLOCK: _ClassVar[DropPolicy]
    LATEST: _ClassVar[DropPolicy]

class TrackerKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    OKS: _ClassVar[TrackerKind]
    IOU: _ClassVar[TrackerKind]

class FrameOutcome(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PROCESSED: _ClassVar[FrameOutcome]
    DROPPED: _ClassVar[FrameOutcome]
    ERROR: _ClassVar[FrameOutcome]
BLOCK: DropPolicy
LATEST: DropPolicy
OKS: TrackerKind
IOU: TrackerKind
PROCESSED: FrameOutcome
DROPPED: FrameOutcome
ERROR: FrameOutcome

class Box(_message.Message):
    __slots__ = ("x", "y", "w", "h", "score")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    W_FIELD_NUMBER: _ClassVar[int]
    H_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    x: float
    y: float
    w: float
    h: float
    score: float
    def __init__(self, x: _Optional[float] = ..., y: _Optional[float] = ..., w: _Optional[float] = ..., h: _Optional[float] = ..., score: _Optional[float] = ...) -> None: ...

class PoseOptions(_message.Message):
    __slots__ = ("flip", "min_score", "max_persons", "disable_nms")
    FLIP_FIELD_NUMBER: _ClassVar[int]
    MIN_SCORE_FIELD_NUMBER: _ClassVar[int]
    MAX_PERSONS_FIELD_NUMBER: _ClassVar[int]
    DISABLE_NMS_FIELD_NUMBER: _ClassVar[int]
    flip: bool
    min_score: float
    max_persons: int
    disable_nms: bool
    def __init__(self, flip: _Optional[bool] = ..., min_score: _Optional[float] = ..., max_persons: _Optional[int] = ..., disable_nms: _Optional[bool] = ...) -> None: ...

class Keypoint(_message.Message):
    __slots__ = ("name", "x", "y", "score")
    NAME_FIELD_NUMBER: _ClassVar[int]
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    name: str
    x: float
    y: float
    score: float
    def __init__(self, name: _Optional[str] = ..., x: _Optional[float] = ..., y: _Optional[float] = ..., score: _Optional[float] = ...) -> None: ...

class Person(_message.Message):
    __slots__ = ("bbox", "bbox_score", "score", "keypoints", "track_id")
    BBOX_FIELD_NUMBER: _ClassVar[int]
    BBOX_SCORE_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    KEYPOINTS_FIELD_NUMBER: _ClassVar[int]
    TRACK_ID_FIELD_NUMBER: _ClassVar[int]
    bbox: Box
    bbox_score: float
    score: float
    keypoints: _containers.RepeatedCompositeFieldContainer[Keypoint]
    track_id: int
    def __init__(self, bbox: _Optional[_Union[Box, _Mapping]] = ..., bbox_score: _Optional[float] = ..., score: _Optional[float] = ..., keypoints: _Optional[_Iterable[_Union[Keypoint, _Mapping]]] = ..., track_id: _Optional[int] = ...) -> None: ...

class ImageSize(_message.Message):
    __slots__ = ("width", "height")
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    width: int
    height: int
    def __init__(self, width: _Optional[int] = ..., height: _Optional[int] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("name", "trained")
    NAME_FIELD_NUMBER: _ClassVar[int]
    TRAINED_FIELD_NUMBER: _ClassVar[int]
    name: str
    trained: bool
    def __init__(self, name: _Optional[str] = ..., trained: _Optional[bool] = ...) -> None: ...

class EstimateRequest(_message.Message):
    __slots__ = ("image", "options", "boxes", "use_boxes", "model")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    BOXES_FIELD_NUMBER: _ClassVar[int]
    USE_BOXES_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    image: bytes
    options: PoseOptions
    boxes: _containers.RepeatedCompositeFieldContainer[Box]
    use_boxes: bool
    model: str
    def __init__(self, image: _Optional[bytes] = ..., options: _Optional[_Union[PoseOptions, _Mapping]] = ..., boxes: _Optional[_Iterable[_Union[Box, _Mapping]]] = ..., use_boxes: _Optional[bool] = ..., model: _Optional[str] = ...) -> None: ...

class EstimateResponse(_message.Message):
    __slots__ = ("image_size", "persons", "model", "boxes_source", "timings_ms")
    class TimingsMsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    IMAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PERSONS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    BOXES_SOURCE_FIELD_NUMBER: _ClassVar[int]
    TIMINGS_MS_FIELD_NUMBER: _ClassVar[int]
    image_size: ImageSize
    persons: _containers.RepeatedCompositeFieldContainer[Person]
    model: ModelInfo
    boxes_source: str
    timings_ms: _containers.ScalarMap[str, float]
    def __init__(self, image_size: _Optional[_Union[ImageSize, _Mapping]] = ..., persons: _Optional[_Iterable[_Union[Person, _Mapping]]] = ..., model: _Optional[_Union[ModelInfo, _Mapping]] = ..., boxes_source: _Optional[str] = ..., timings_ms: _Optional[_Mapping[str, float]] = ...) -> None: ...

class EstimateBatchRequest(_message.Message):
    __slots__ = ("requests",)
    REQUESTS_FIELD_NUMBER: _ClassVar[int]
    requests: _containers.RepeatedCompositeFieldContainer[EstimateRequest]
    def __init__(self, requests: _Optional[_Iterable[_Union[EstimateRequest, _Mapping]]] = ...) -> None: ...

class BatchItem(_message.Message):
    __slots__ = ("result", "error")
    RESULT_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    result: EstimateResponse
    error: ItemError
    def __init__(self, result: _Optional[_Union[EstimateResponse, _Mapping]] = ..., error: _Optional[_Union[ItemError, _Mapping]] = ...) -> None: ...

class ItemError(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ...) -> None: ...

class EstimateBatchResponse(_message.Message):
    __slots__ = ("items",)
    ITEMS_FIELD_NUMBER: _ClassVar[int]
    items: _containers.RepeatedCompositeFieldContainer[BatchItem]
    def __init__(self, items: _Optional[_Iterable[_Union[BatchItem, _Mapping]]] = ...) -> None: ...

class StreamOptions(_message.Message):
    __slots__ = ("pose", "detect_every", "policy", "max_in_flight", "smoothing", "one_euro_min_cutoff", "one_euro_beta", "one_euro_d_cutoff", "tracker", "match_threshold", "max_missing", "box_enlarge", "model")
    POSE_FIELD_NUMBER: _ClassVar[int]
    DETECT_EVERY_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    MAX_IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    SMOOTHING_FIELD_NUMBER: _ClassVar[int]
    ONE_EURO_MIN_CUTOFF_FIELD_NUMBER: _ClassVar[int]
    ONE_EURO_BETA_FIELD_NUMBER: _ClassVar[int]
    ONE_EURO_D_CUTOFF_FIELD_NUMBER: _ClassVar[int]
    TRACKER_FIELD_NUMBER: _ClassVar[int]
    MATCH_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    MAX_MISSING_FIELD_NUMBER: _ClassVar[int]
    BOX_ENLARGE_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    pose: PoseOptions
    detect_every: int
    policy: DropPolicy
    max_in_flight: int
    smoothing: bool
    one_euro_min_cutoff: float
    one_euro_beta: float
    one_euro_d_cutoff: float
    tracker: TrackerKind
    match_threshold: float
    max_missing: int
    box_enlarge: float
    model: str
    def __init__(self, pose: _Optional[_Union[PoseOptions, _Mapping]] = ..., detect_every: _Optional[int] = ..., policy: _Optional[_Union[DropPolicy, str]] = ..., max_in_flight: _Optional[int] = ..., smoothing: _Optional[bool] = ..., one_euro_min_cutoff: _Optional[float] = ..., one_euro_beta: _Optional[float] = ..., one_euro_d_cutoff: _Optional[float] = ..., tracker: _Optional[_Union[TrackerKind, str]] = ..., match_threshold: _Optional[float] = ..., max_missing: _Optional[int] = ..., box_enlarge: _Optional[float] = ..., model: _Optional[str] = ...) -> None: ...

class RawImage(_message.Message):
    __slots__ = ("width", "height", "rgb")
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    RGB_FIELD_NUMBER: _ClassVar[int]
    width: int
    height: int
    rgb: bytes
    def __init__(self, width: _Optional[int] = ..., height: _Optional[int] = ..., rgb: _Optional[bytes] = ...) -> None: ...

class Frame(_message.Message):
    __slots__ = ("frame_id", "image", "raw", "timestamp", "boxes", "use_boxes", "options")
    FRAME_ID_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    RAW_FIELD_NUMBER: _ClassVar[int]
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    BOXES_FIELD_NUMBER: _ClassVar[int]
    USE_BOXES_FIELD_NUMBER: _ClassVar[int]
    OPTIONS_FIELD_NUMBER: _ClassVar[int]
    frame_id: int
    image: bytes
    raw: RawImage
    timestamp: float
    boxes: _containers.RepeatedCompositeFieldContainer[Box]
    use_boxes: bool
    options: StreamOptions
    def __init__(self, frame_id: _Optional[int] = ..., image: _Optional[bytes] = ..., raw: _Optional[_Union[RawImage, _Mapping]] = ..., timestamp: _Optional[float] = ..., boxes: _Optional[_Iterable[_Union[Box, _Mapping]]] = ..., use_boxes: _Optional[bool] = ..., options: _Optional[_Union[StreamOptions, _Mapping]] = ...) -> None: ...

class FramePoses(_message.Message):
    __slots__ = ("frame_id", "result", "outcome", "error", "latency_ms", "detector_ran")
    FRAME_ID_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    OUTCOME_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    DETECTOR_RAN_FIELD_NUMBER: _ClassVar[int]
    frame_id: int
    result: EstimateResponse
    outcome: FrameOutcome
    error: ItemError
    latency_ms: float
    detector_ran: bool
    def __init__(self, frame_id: _Optional[int] = ..., result: _Optional[_Union[EstimateResponse, _Mapping]] = ..., outcome: _Optional[_Union[FrameOutcome, str]] = ..., error: _Optional[_Union[ItemError, _Mapping]] = ..., latency_ms: _Optional[float] = ..., detector_ran: _Optional[bool] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModelDescription(_message.Message):
    __slots__ = ("name", "architecture", "input_width", "input_height", "keypoint_schema", "joints", "trained", "is_default")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ARCHITECTURE_FIELD_NUMBER: _ClassVar[int]
    INPUT_WIDTH_FIELD_NUMBER: _ClassVar[int]
    INPUT_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    KEYPOINT_SCHEMA_FIELD_NUMBER: _ClassVar[int]
    JOINTS_FIELD_NUMBER: _ClassVar[int]
    TRAINED_FIELD_NUMBER: _ClassVar[int]
    IS_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    name: str
    architecture: str
    input_width: int
    input_height: int
    keypoint_schema: str
    joints: _containers.RepeatedScalarFieldContainer[str]
    trained: bool
    is_default: bool
    def __init__(self, name: _Optional[str] = ..., architecture: _Optional[str] = ..., input_width: _Optional[int] = ..., input_height: _Optional[int] = ..., keypoint_schema: _Optional[str] = ..., joints: _Optional[_Iterable[str]] = ..., trained: _Optional[bool] = ..., is_default: _Optional[bool] = ...) -> None: ...

class ListModelsResponse(_message.Message):
    __slots__ = ("models",)
    MODELS_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelDescription]
    def __init__(self, models: _Optional[_Iterable[_Union[ModelDescription, _Mapping]]] = ...) -> None: ...
