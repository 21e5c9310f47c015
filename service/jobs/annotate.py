"""``posesvc annotate``: the pose pipeline over a backlog of images and videos, as a batch job.

:func:`process_items` turns a chunk of items into their output records with one pipeline (images batched
through :meth:`PosePipeline.run`; a video frame by frame with the stream tracker, so every person carries a
track id); it never raises for a bad item (an unreadable image, a broken video): the item's record says what
went wrong. :func:`run_embedded` feeds chunks through one in-process pipeline and appends the records to the
:class:`~service.jobs.journal.Journal` in item order, with a progress bar; ``service.jobs.ray_runner`` runs
the same chunks on a Ray actor pool and writes the same records in the same order.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import PoseServiceError
from ..pipeline.pipeline import PosePipeline
from ..schemas import PoseOptions, PoseResult
from .items import Item
from .journal import Journal, result_fields

Records = list[dict[str, Any]]


@dataclass(frozen=True)
class JobOptions:
    """Per-job settings.

    Attributes:
        pose: per-image options (flip test, NMS, score floor).
        batch_images: images per pipeline call (and items per chunk).
        render_dir: write each image with its poses drawn here (``None``: no drawings).
        max_frames: read at most this many frames of each video.
        tracker: ``oks`` or ``iou`` for video track ids.
    """

    pose: PoseOptions = field(default_factory=PoseOptions)
    batch_images: int = 8
    render_dir: Path | None = None
    max_frames: int | None = None
    tracker: str = "oks"


@dataclass
class Summary:
    """What a run did: items done now, skipped (done by an earlier run), bad; persons; wall time."""

    items: int = 0
    done: int = 0
    skipped: int = 0
    errors: int = 0
    persons: int = 0
    frames: int = 0
    seconds: float = 0.0
    bad: list[str] = field(default_factory=list)

    def add(self, records: Records) -> None:
        final = records[-1]
        self.done += 1
        if final.get("error"):
            self.errors += 1
            self.bad.append(f"{final['item']}: {final['error']}")
        for r in records:
            if r["kind"] in ("image", "frame"):
                self.persons += len(r.get("persons", ()))
            self.frames += r["kind"] == "frame"

    def to_dict(self) -> dict[str, Any]:
        return {"items": self.items, "done": self.done, "skipped_done_before": self.skipped, "errors": self.errors,
                "persons": self.persons, "video_frames": self.frames, "seconds": round(self.seconds, 3),
                "persons_per_s": round(self.persons / max(self.seconds, 1e-9), 3), "bad_items": self.bad}  # fmt: skip


def _error(exc: BaseException) -> str:
    code = getattr(exc, "code", None) or type(exc).__name__
    return f"{code}: {' '.join(str(exc).split())}"


def _image_record(item: Item, **fields: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {"item": item.key, "kind": "image", "path": str(item.path)}
    if item.image_id is not None:
        rec["image_id"] = item.image_id
    rec.update(fields)
    return rec


def _render(pipeline: PosePipeline, item: Item, image: NDArray[np.uint8], result: PoseResult, out: Path) -> None:
    import cv2

    from ..pipeline.render import render_poses

    drawn = render_poses(image, result, pipeline.card.skeleton)
    name = f"{item.image_id}.jpg" if item.image_id is not None else Path(item.key).with_suffix(".jpg").name
    out.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(out / name), cv2.cvtColor(drawn, cv2.COLOR_RGB2BGR))


def _images(pipeline: PosePipeline, items: Sequence[Item], opts: JobOptions) -> list[Records]:
    from ..pipeline.image import read_image_file

    out: list[Records] = [[] for _ in items]
    decoded: list[tuple[int, NDArray[np.uint8]]] = []
    for i, item in enumerate(items):
        try:
            decoded.append((i, read_image_file(str(item.path), honour_exif=item.image_id is None)))
        except (OSError, PoseServiceError, ValueError) as exc:
            out[i] = [_image_record(item, persons=[], error=_error(exc))]
    if decoded:
        try:
            results = pipeline.run([im for _, im in decoded], [items[i].boxes for i, _ in decoded], opts.pose)
        except PoseServiceError:  # one bad input (e.g. boxes outside an image) fails the call: go one by one
            results = []
            for i, im in decoded:
                try:
                    results.append(pipeline.run([im], [items[i].boxes], opts.pose)[0])
                except PoseServiceError as exc:
                    results.append(exc)  # type: ignore[arg-type]
        for (i, image), res in zip(decoded, results, strict=True):
            if isinstance(res, BaseException):
                out[i] = [_image_record(items[i], persons=[], error=_error(res))]
                continue
            out[i] = [_image_record(items[i], **result_fields(res), error=None)]
            if opts.render_dir is not None:
                _render(pipeline, items[i], image, res, opts.render_dir)
    return out


def _video(pipeline: PosePipeline, item: Item, opts: JobOptions) -> Records:
    """Frames through the pipeline (detector every frame, batched) and the stream tracker, in order."""
    import cv2

    from ..streaming.session import StreamOptions, StreamSession

    records: Records = []
    cap = cv2.VideoCapture(str(item.path))
    try:
        if not cap.isOpened():
            return [{"item": item.key, "kind": "video", "path": str(item.path), "frames": 0,
                     "error": f"undecodable_video: cannot open {item.path.name} as a video"}]  # fmt: skip
        fps = float(cap.get(cv2.CAP_PROP_FPS)) or 30.0
        expected = int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        if opts.max_frames is not None:
            expected = min(expected, opts.max_frames) if expected else opts.max_frames
        session = StreamSession("annotate", StreamOptions(tracker=opts.tracker), sigmas=pipeline.card.oks_sigmas)  # type: ignore[arg-type]
        index, error = 0, None
        while opts.max_frames is None or index < opts.max_frames:
            frames: list[NDArray[np.uint8]] = []
            while len(frames) < opts.batch_images and (opts.max_frames is None or index + len(frames) < opts.max_frames):
                ok, bgr = cap.read()
                if not ok:
                    break
                frames.append(np.ascontiguousarray(bgr[..., ::-1]))
            if not frames:
                break
            try:
                results = pipeline.run(frames, [None] * len(frames), opts.pose)
            except PoseServiceError as exc:
                error = _error(exc)
                break
            for res in results:
                tracked = session.apply(res, index / fps)
                records.append({"item": item.key, "kind": "frame", "frame": index, "timestamp": round(index / fps, 6),
                                **result_fields(tracked)})  # fmt: skip
                index += 1
        if error is None and expected and index < expected:
            error = f"truncated_video: the video ended after {index} of {expected} frames"
        if error is None and index == 0:
            error = f"undecodable_video: no frame could be read from {item.path.name}"
        records.append({"item": item.key, "kind": "video", "path": str(item.path), "frames": index, "error": error})
        return records
    finally:
        cap.release()


def process_items(pipeline: PosePipeline, items: Sequence[Item], opts: JobOptions) -> list[Records]:
    """Records for each item of ``items``, in order (consecutive images share pipeline calls)."""
    out: list[Records] = []
    i = 0
    while i < len(items):
        if items[i].kind == "video":
            out.append(_video(pipeline, items[i], opts))
            i += 1
            continue
        j = i
        while j < len(items) and items[j].kind == "image" and j - i < opts.batch_images:
            j += 1
        out.extend(_images(pipeline, items[i:j], opts))
        i = j
    return out


def chunks(items: Sequence[Item], size: int) -> Iterable[list[Item]]:
    for start in range(0, len(items), max(1, size)):
        yield list(items[start : start + max(1, size)])


def run_embedded(
    pipeline: PosePipeline,
    items: Sequence[Item],
    journal: Journal,
    opts: JobOptions,
    *,
    progress: bool = True,
    on_chunk: Callable[[int], None] | None = None,
) -> Summary:
    """Run every item not yet done in ``journal`` through ``pipeline``; append the records in item order."""
    todo = [it for it in items if it.key not in journal.done]
    summary = Summary(items=len(items), skipped=len(items) - len(todo))
    t0 = time.perf_counter()
    bar = _bar(len(todo), progress)
    try:
        for chunk in chunks(todo, opts.batch_images):
            for records in process_items(pipeline, chunk, opts):
                for r in records:
                    journal.write(r)
                summary.add(records)
            _advance(bar, len(chunk), summary, t0)
            if on_chunk is not None:
                on_chunk(len(chunk))
    finally:
        if bar is not None:
            bar.close()
    summary.seconds = time.perf_counter() - t0
    return summary


def _bar(total: int, enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="item", dynamic_ncols=True, desc="annotate")


def _advance(bar: Any, n: int, summary: Summary, t0: float) -> None:
    if bar is not None:
        rate = summary.persons / max(time.perf_counter() - t0, 1e-9)
        bar.set_postfix(persons=summary.persons, persons_per_s=f"{rate:.1f}", bad=summary.errors)
        bar.update(n)
