"""Response schemas (pydantic) for the OpenAPI document, with examples."""

from __future__ import annotations

from pydantic import BaseModel, Field


class KeypointOut(BaseModel):
    name: str = Field(examples=["nose"])
    x: float = Field(description="image px")
    y: float = Field(description="image px")
    score: float = Field(description="raw heatmap maximum (≈ 0..1 for trained models)")


class PersonOut(BaseModel):
    bbox: list[float] = Field(
        description="[x, y, w, h] box the crop was made from, image px",
        examples=[[280.8, 44.8, 218.2, 346.7]],
    )
    bbox_score: float
    score: float = Field(description="bbox_score × mean of keypoint scores above 0.2")
    keypoints: list[KeypointOut] = Field(
        description="the model's joints in its keypoint schema's order (e.g. the 17 COCO joints)"
    )
    track_id: int | None = Field(None, description="streams only")


class ImageSizeOut(BaseModel):
    width: int
    height: int


class ModelOut(BaseModel):
    name: str
    trained: bool = Field(description="false when the server runs with random weights (smoke run)")


class PoseResponse(BaseModel):
    image_size: ImageSizeOut
    model: ModelOut
    boxes_source: str = Field(description="client | detector")
    persons: list[PersonOut]
    timings_ms: dict[str, float] = Field(description="stage durations of the batch this image was part of")
    request_id: str


class CocoEntry(BaseModel):
    image_id: int
    category_id: int = 1
    keypoints: list[float] = Field(description="[x1, y1, s1, ..., xK, yK, sK] (K joints of the model)")
    score: float


class Problem(BaseModel):
    type: str = Field(examples=["urn:posesvc:problem:undecodable_image"])
    title: str
    status: int
    detail: str
    instance: str | None = None


class BatchItemOut(BaseModel):
    result: PoseResponse | None = None
    error: Problem | None = None


class BatchResponse(BaseModel):
    items: list[BatchItemOut]


class ModelCardOut(BaseModel):
    name: str
    default: bool = Field(description="requests that name no model go to this one")
    description: str
    architecture: str
    input_size: list[int] = Field(description="[width, height]")
    heatmap_size: list[int] = Field(description="[width, height]")
    convention: str
    flip_shift: bool
    codec: str
    blur_kernel: int
    published_ap: float | None
    published_ap_note: str
    trained: bool
    backend: str = Field(description="inference backend serving the model: torch | onnxruntime | openvino | tensorrt")
    backend_note: str = Field(description="why the backend differs from the one asked for (auto fell back), else empty")
    keypoint_schema: str = Field(description="coco17 | mpii16 | crowdpose14 | the card's own")
    joints: list[str]
    skeleton: list[list[int]]


class ModelsResponse(BaseModel):
    models: list[ModelCardOut]
    detector: dict[str, object] | None
