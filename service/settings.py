"""Typed settings (pydantic-settings): ``POSESVC_*`` environment variables (nested with ``__``), a ``.env``
file, then CLI flags on top. Imports nothing else from the project."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from platformdirs import user_cache_dir
from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def default_weights_dir() -> Path:
    return Path(user_cache_dir("posesvc")) / "weights"


class ModelSettings(BaseModel):
    """Which pose model to serve."""

    card: str = Field(
        "hrnet_w32_256x192_mmpose_dark",
        description="card name in models/ or a path to a .toml card (default: MMPose's HRNet-W32 DARK, 75.7 AP, "
        "whose checkpoint downloads directly)",
    )
    cards: list[str] = Field(
        default_factory=list,
        description="serve several models (card names or paths; the first is the default); empty = [card]",
    )
    weights: Path | None = Field(None, description="explicit checkpoint path (overrides the weights cache)")
    models_dir: Path | None = Field(
        None, description="directory of model cards (default: the repo's models/)"
    )
    backend: Literal["auto", "torch", "onnxruntime", "openvino", "tensorrt"] | None = Field(
        None,
        description="inference backend for every served model (default: each card's [backend], which is "
        "auto: the faster of ONNX Runtime and OpenVINO on CPU, TensorRT on CUDA, when installed and checked against "
        "torch, else torch)",
    )


    def served_cards(self) -> list[str]:
        """The cards ``posesvc serve`` serves, the default first."""
        return list(self.cards) if self.cards else [self.card]


class DetectorSettings(BaseModel):
    """Person detector (Ultralytics YOLO)."""

    weights: str = Field(
        "yolov8n.pt", description="local .pt, an Ultralytics model name, or a .yaml (untrained)"
    )
    conf: float = Field(0.25, ge=0.0, le=1.0)
    iou: float = Field(0.7, ge=0.0, le=1.0)
    max_det: int = Field(100, ge=1, le=1000)
    imgsz: int = Field(640, ge=32, le=4096)


class EngineSettings(BaseModel):
    """Queue and dynamic batcher."""

    queue_size: int = Field(64, ge=1, description="bounded request queue; full → Overloaded (429)")
    max_batch_images: int = Field(8, ge=1, description="images per batch (detector batch)")
    max_batch_crops: int = Field(32, ge=1, description="person crops per pose forward chunk (×2 with flip)")
    max_delay_ms: float = Field(0.0, ge=0.0, description="wait for more requests after the first (0 = none)")
    default_deadline_s: float = Field(
        30.0, gt=0.0, description="per-request deadline unless the client sets one"
    )
    drain_grace_s: float = Field(10.0, ge=0.0, description="shutdown: time to finish in-flight work")
    decode_workers: int = Field(2, ge=1, description="threads decoding images off the event loop")
    warmup: bool = Field(True, description="run one forward per expected batch shape before reporting ready")


class Settings(BaseSettings):
    """All service settings. Env: ``POSESVC_DEVICE=cpu``, ``POSESVC_ENGINE__QUEUE_SIZE=128``, ..."""

    model_config = SettingsConfigDict(
        env_prefix="POSESVC_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
        env_ignore_empty=True,
    )

    weights_dir: Path = Field(default_factory=default_weights_dir)
    device: str = Field(
        "auto", description="auto | cpu | cuda | cuda:N | comma-separated list (one worker each)"
    )
    precision: Literal["auto", "fp32", "bf16", "fp16"] = Field(
        "auto", description="auto = fp16 on CUDA, fp32 on CPU; bf16 autocast is optional on CPU"
    )
    channels_last: bool = False
    cpu_threads: int | None = Field(
        None, ge=1, description="intra-op CPU threads per backend (default: the cgroup CPU quota / affinity)"
    )
    torch_compile: bool = Field(
        False, description="CUDA, torch backend: torch.compile (reduce-overhead: CUDA graphs) on fixed batch buckets"
    )
    crop: Literal["auto", "opencv", "device"] = Field(
        "auto", description="crop warps: OpenCV on the CPU (the reference), or on the device (affine grid "
        "sampling on CUDA); auto = device on CUDA, OpenCV on CPU",
    )
    flip_test: bool = True
    max_offset: float | None = Field(
        None, gt=0, description="optional DARK safeguard (heatmap px); off = official"
    )
    honour_exif: bool = Field(True, description="apply EXIF orientation to uploads (off for parity runs)")
    allow_untrained: bool = Field(False, description="start with random weights (smoke runs); results say so")
    download: bool = Field(
        True,
        description="posesvc serve downloads missing weights of its cards (and the detector's) on start "
        "(resumable, sha256-checked); false = never (offline: use posesvc weights import)",
    )
    weights_mirror: str | None = Field(
        None,
        description="base URL to download checkpoints from instead of the cards' hosts (file name appended), "
        "e.g. an internal mirror",
    )
    max_image_bytes: int = Field(20 * 1024 * 1024, ge=1)
    max_image_pixels: int = Field(50_000_000, ge=1)
    max_boxes: int = Field(256, ge=1, description="client boxes per image")
    max_batch_images: int = Field(16, ge=1, description="images per REST/gRPC batch request")
    grpc_max_message_bytes: int = Field(32 * 1024 * 1024, ge=1024, description="gRPC max message size")
    enable_grpc: bool = Field(True, description="serve gRPC next to HTTP")
    stream_idle_ttl_s: float = Field(
        60.0, gt=0, description="a video stream with no frame received or answered for this long (s) ends"
    )
    max_streams_per_client: int = Field(
        8, ge=1, description="concurrent gRPC video streams per client (API key, else peer address)"
    )
    tls_cert_file: Path | None = Field(
        None, description="PEM certificate (chain): serve HTTPS and gRPC over TLS (needs tls_key_file)"
    )
    tls_key_file: Path | None = Field(None, description="PEM private key for tls_cert_file")
    api_key_hashes: list[str] = Field(
        default_factory=list,
        description="SHA-256 hex digests of accepted API keys (empty = no auth); `posesvc keys hash` prints "
        "one. /healthz, /readyz, the web page and (unless metrics_require_key) /metrics stay open",
    )
    metrics_require_key: bool = Field(
        False, description="put /metrics behind the API keys too (the scraper then sends one)"
    )
    cors_origins: list[str] = Field(
        default_factory=list, description="allowed CORS origins (empty = no CORS)"
    )
    host: str = "127.0.0.1"
    http_port: int = Field(8000, ge=0, le=65535)
    grpc_port: int = Field(50051, ge=0, le=65535)
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    model: ModelSettings = Field(default_factory=ModelSettings)
    detector: DetectorSettings = Field(default_factory=DetectorSettings)
    engine: EngineSettings = Field(default_factory=EngineSettings)

    @model_validator(mode="after")
    def _check_tls(self) -> Settings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file must be set together")
        return self

    @property
    def tls_enabled(self) -> bool:
        return self.tls_cert_file is not None and self.tls_key_file is not None

    @field_validator("device")
    @classmethod
    def _check_device(cls, v: str) -> str:
        for d in (s.strip() for s in v.split(",")):
            if d not in ("auto", "cpu", "cuda") and not (d.startswith("cuda:") and d[5:].isdigit()):
                raise ValueError(f"device must be auto, cpu, cuda or cuda:N (comma-separated), got {d!r}")
        return v

    def devices(self) -> list[str]:
        """Resolve ``device`` to a list of torch device strings (auto → cuda:0 when available, else cpu)."""
        out = []
        for d in (s.strip() for s in self.device.split(",")):
            if d == "auto":
                import torch

                d = "cuda:0" if torch.cuda.is_available() else "cpu"
            elif d == "cuda":
                d = "cuda:0"
            out.append(d)
        return out

    def precision_for(self, device: str) -> Literal["fp32", "bf16", "fp16"]:
        if self.precision == "auto":
            return "fp16" if device.startswith("cuda") else "fp32"
        return self.precision
