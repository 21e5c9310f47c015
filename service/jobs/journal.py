"""The job's output and resume state: one JSON-lines file, appended and flushed record by record.

Records (one JSON object per line):

* image: ``{"item", "kind": "image", "path", "image_id"?, "width", "height", "persons": [...], "error": null}``;
* video frame: ``{"item", "kind": "frame", "frame", "timestamp" (s), "width", "height", "persons": [...]}``
  (persons carry ``track_id``), then one ``{"item", "kind": "video", "path", "frames", "error"}`` when the video
  is finished;
* a bad item: its ``image`` / ``video`` record with ``"error": "<code>: <message>"`` (a video that breaks
  after some frames keeps those frames).

Persons: ``{"bbox" [x, y, w, h] px, "bbox_score", "score", "keypoints" [[x, y, score] × K], "track_id"?}``.

An item is done when its image record or its final video record is in the file; a rerun skips those and
rewrites the file without the frames of a video that did not finish.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import IO, Any

from ..schemas import Person, PoseResult


def person_record(p: Person) -> dict[str, Any]:
    out: dict[str, Any] = {
        "bbox": [round(float(v), 3) for v in p.bbox],
        "bbox_score": round(float(p.bbox_score), 5),
        "score": round(float(p.score), 5),
        "keypoints": [[round(float(k[0]), 3), round(float(k[1]), 3), round(float(k[2]), 5)] for k in p.keypoints],
    }
    if p.track_id is not None:
        out["track_id"] = int(p.track_id)
    return out


def result_fields(result: PoseResult) -> dict[str, Any]:
    return {
        "width": int(result.image_size[0]),
        "height": int(result.image_size[1]),
        "persons": [person_record(p) for p in result.persons],
    }


class Journal:
    """Append-only JSON lines with resume: :attr:`done` holds the keys of finished items."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.done: set[str] = set()
        self.resumed_records = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_file():
            self._load()
        self._fh: IO[str] = open(path, "a", encoding="utf-8")  # noqa: SIM115 - held open for the job

    def _load(self) -> None:
        keep: list[str] = []
        partial: dict[str, list[str]] = {}
        with open(self.path, encoding="utf-8") as fh:
            for line in fh:
                try:
                    rec = json.loads(line)
                except ValueError:  # a line cut by a crash: dropped, its item is redone
                    continue
                key, kind = rec.get("item"), rec.get("kind")
                if kind == "frame":
                    partial.setdefault(key, []).append(line)
                    continue
                if kind in ("image", "video"):
                    self.done.add(key)
                    keep.extend(partial.pop(key, []))
                keep.append(line if line.endswith("\n") else line + "\n")
        self.resumed_records = len(keep)
        tmp = self.path.with_suffix(self.path.suffix + ".tmp")
        tmp.write_text("".join(keep), encoding="utf-8")
        os.replace(tmp, self.path)

    def write(self, record: dict[str, Any]) -> None:
        self._fh.write(json.dumps(record, separators=(",", ":")) + "\n")
        self._fh.flush()

    def close(self) -> None:
        self._fh.close()


def read_records(path: Path) -> list[dict[str, Any]]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]
