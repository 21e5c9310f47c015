"""What a batch job works on: items (an image, a video, or an image of a COCO annotation file with its boxes),
found from files, folders, glob patterns or a COCO annotation file, in a stable order."""

from __future__ import annotations

import glob
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from ..errors import InvalidInput

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"})
VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg"})

ItemKind = Literal["image", "video"]


@dataclass(frozen=True)
class Item:
    """One unit of work.

    Attributes:
        key: stable identity in the output (the path as given/found; ``coco:<image_id>`` for annotation-file
            images): a rerun skips keys already done.
        path: the file.
        kind: ``image`` or ``video`` (by extension; anything else is tried as an image).
        image_id: the COCO image id (annotation-file input), else ``None``.
        boxes: person boxes ``(M, 5)`` ``(x, y, w, h, score)`` px for this image (annotation-file input with
            ``--gt-boxes`` or ``--det``), else ``None`` (the detector finds the persons).
    """

    key: str
    path: Path
    kind: ItemKind
    image_id: int | None = None
    boxes: NDArray[np.float64] | None = None


def _kind(path: Path) -> ItemKind:
    return "video" if path.suffix.lower() in VIDEO_EXTENSIONS else "image"


def _is_media(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS | VIDEO_EXTENSIONS


def discover(inputs: Sequence[str]) -> list[Item]:
    """Items for files, folders (recursively: images and videos by extension) and glob patterns, each input's
    items sorted, duplicates dropped. A named file is an item even if it turns out unreadable (it is then
    recorded as a bad item); an input that names nothing is an error."""
    items: dict[str, Item] = {}
    for raw in inputs:
        p = Path(raw)
        if p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.is_file() and _is_media(f))
        elif p.is_file():
            found = [p]
        else:
            found = sorted(Path(m) for m in glob.glob(raw, recursive=True) if Path(m).is_file())
            if not found:
                raise InvalidInput(f"no such file, folder or matching pattern: {raw}")
        for f in found:
            items.setdefault(str(f), Item(str(f), f, _kind(f)))
    return list(items.values())


def coco_items(
    ann_file: Path, images_dir: Path, boxes: dict[int, NDArray[np.float64]] | None, ids: Sequence[int]
) -> list[Item]:
    """Items for the images ``ids`` of a COCO annotation file (``file_name`` under ``images_dir``), with their
    boxes when given (``None``: the detector)."""
    from ..evaluation.coco import load_coco

    coco = load_coco(ann_file)
    out = []
    for i in ids:
        info = coco.loadImgs([i])[0]
        out.append(Item(f"coco:{i}", images_dir / info["file_name"], "image", int(i),
                        None if boxes is None else boxes.get(int(i), np.zeros((0, 5)))))  # fmt: skip
    return out
