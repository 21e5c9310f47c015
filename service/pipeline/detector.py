"""Person detection behind a small protocol; the default implementation is Ultralytics YOLO.

Boxes are returned as ``(M, 5)`` float64 ``(x, y, w, h, score)`` in original image pixels. Requests that
carry their own boxes never reach the detector.

Ultralytics is kept off the network and off pip: importing this module switches off its auto-install and
its online checks (``YOLO_AUTOINSTALL=false``, ``YOLO_OFFLINE=true``, which also stops its telemetry), the
detector only loads weights that are already on disk (``posesvc weights fetch --detector NAME`` is the one
command that downloads them), and Pillow's own ``Image.open`` is put back in place of Ultralytics' patch,
which would ``pip install pi-heif`` when it meets data it cannot identify (a garbage upload).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
from numpy.typing import NDArray

from ..errors import WeightsError

# Before Ultralytics is first imported (it reads both at import time): never install, never go online.
os.environ["YOLO_AUTOINSTALL"] = "false"
os.environ["YOLO_OFFLINE"] = "true"

log = logging.getLogger(__name__)


def import_yolo() -> Any:
    """Ultralytics' ``YOLO`` class, imported offline and with Pillow's ``Image.open`` restored."""
    try:
        from ultralytics import YOLO  # type: ignore[attr-defined]
    except ImportError as exc:  # pragma: no cover - ultralytics is a dependency
        raise WeightsError("the ultralytics package is required for the person detector") from exc
    restore_pillow_open()
    return YOLO


def restore_pillow_open() -> None:
    """Undo Ultralytics' ``PIL.Image.open`` patch (it runs a pip install on unidentified data)."""
    import sys

    from PIL import Image

    patches = sys.modules.get("ultralytics.utils.patches")
    original = getattr(patches, "_image_open", None)
    if original is not None and Image.open is not original:
        Image.open = original


def is_untrained_spec(weights: str) -> bool:
    """An architecture ``.yaml`` (random weights) rather than a checkpoint."""
    return weights.endswith((".yaml", ".yml"))


def resolve_detector_weights(weights: str, weights_dir: Path | None) -> str:
    """A local file for ``weights`` (a path, or a name looked up in ``weights_dir`` and then in
    Ultralytics' own weights folder), or the ``.yaml`` itself. Never downloads.

    Raises:
        WeightsError: no such file; the message names ``posesvc weights fetch --detector``.
    """
    if is_untrained_spec(weights):
        return weights
    path = Path(weights).expanduser()
    if path.is_file():
        return str(path)
    candidates = []
    if path.name == weights:  # a bare name: look in the caches
        if weights_dir is not None:
            candidates.append(Path(weights_dir) / weights)
        try:
            from ultralytics.utils import SETTINGS

            candidates.append(Path(SETTINGS["weights_dir"]) / weights)
        except Exception:  # pragma: no cover - settings unreadable: only our own cache counts
            pass
    for c in candidates:
        if c.is_file():
            return str(c)
    looked = ", ".join(str(c) for c in candidates) or str(path)
    raise WeightsError(
        f"detector weights {weights!r} are not on this machine (looked in {looked}); "
        f"download them with 'posesvc weights fetch --detector {path.name}', or set "
        "POSESVC_DETECTOR__WEIGHTS=/path/to/file.pt"
    )


@runtime_checkable
class PersonDetector(Protocol):
    """Anything that finds persons in a batch of RGB images."""

    name: str
    trained: bool

    def detect(self, images: Sequence[NDArray[np.uint8]]) -> list[NDArray[np.float64]]:
        """``images``: RGB uint8 ``(H, W, 3)``. Returns per image ``(M, 5)`` ``(x, y, w, h, score)``."""
        ...


@dataclass(frozen=True)
class DetectorConfig:
    """Ultralytics detector settings.

    Attributes:
        weights: a local ``.pt`` path, an Ultralytics model name (``yolov8n.pt``, ``yolo11n.pt``: found in
            ``weights_dir`` or Ultralytics' weights folder, never downloaded here), or an architecture
            ``.yaml`` (untrained, initialised from a seed derived from its name: the same in every process).
        conf: minimum confidence; iou: NMS IoU threshold; max_det: boxes per image; imgsz: inference size.
        weights_dir: the posesvc weights cache, where ``posesvc weights fetch --detector`` puts files.
    """

    weights: str = "yolov8n.pt"
    conf: float = 0.25
    iou: float = 0.7
    max_det: int = 100
    imgsz: int = 640
    device: str = "cpu"
    half: bool = False
    weights_dir: Path | None = None


class YoloPersonDetector:
    """Ultralytics YOLO restricted to COCO class 0 (person), batched over images."""

    def __init__(self, config: DetectorConfig | None = None) -> None:
        self.config = cfg = config or DetectorConfig()
        yolo = import_yolo()
        self.trained = not is_untrained_spec(cfg.weights)
        source = resolve_detector_weights(cfg.weights, cfg.weights_dir)
        try:
            if self.trained:
                self.model: Any = yolo(source)
            else:
                import torch

                from ..nets import init_seed

                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(init_seed(Path(source).name))
                    self.model = yolo(source)
        except Exception as exc:
            raise WeightsError(
                f"cannot load detector {cfg.weights!r}: {type(exc).__name__}: {exc}. Give a local .pt path "
                "(POSESVC_DETECTOR__WEIGHTS), or use yolov8n.yaml for untrained smoke runs"
            ) from exc
        self.name = Path(cfg.weights).stem
        if not self.trained:
            log.warning(
                "person detector %s is UNTRAINED (built from %s): it will find few or no persons",
                self.name,
                cfg.weights,
            )

    def detect(self, images: Sequence[NDArray[np.uint8]]) -> list[NDArray[np.float64]]:
        if not images:
            return []
        cfg = self.config
        # Ultralytics treats numpy arrays as BGR.
        bgr = [np.ascontiguousarray(im[..., ::-1]) for im in images]
        results = self.model.predict(
            bgr, classes=[0], conf=cfg.conf, iou=cfg.iou, max_det=cfg.max_det, imgsz=cfg.imgsz,
            device=cfg.device, verbose=False, **({"half": True} if cfg.half else {}),
        )  # fmt: skip
        out = []
        for r in results:
            xyxy = r.boxes.xyxy.cpu().numpy().astype(np.float64)
            conf = r.boxes.conf.cpu().numpy().astype(np.float64)
            boxes = np.stack(
                [xyxy[:, 0], xyxy[:, 1], xyxy[:, 2] - xyxy[:, 0], xyxy[:, 3] - xyxy[:, 1], conf], axis=1
            ) if len(conf) else np.zeros((0, 5), dtype=np.float64)  # fmt: skip
            keep = np.isfinite(boxes).all(axis=1) & (boxes[:, 2] > 0) & (boxes[:, 3] > 0)
            out.append(boxes[keep])
        return out


def fetch_detector(name: str, weights_dir: Path) -> Path:
    """Download Ultralytics release weights ``name`` into ``weights_dir`` (Ultralytics' own downloader)."""
    if Path(name).name != name or not name.endswith(".pt"):
        raise WeightsError(f"--detector takes a release file name such as yolov8n.pt, got {name!r}")
    dest = Path(weights_dir) / name
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    import_yolo()  # Ultralytics configured offline for serving; this command is the explicit download
    from ultralytics.utils.downloads import attempt_download_asset

    try:
        attempt_download_asset(str(dest))
    except Exception as exc:
        raise WeightsError(f"cannot download {name}: {type(exc).__name__}: {exc}") from None
    if not dest.is_file():
        raise WeightsError(f"cannot download {name}: not an Ultralytics release asset, or no internet")
    return dest
