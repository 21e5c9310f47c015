"""COCO keypoint evaluation of the serving pipeline, scored by pycocotools' ``COCOeval(..., "keypoints")``.

Person boxes come from one of three sources, as in the official HRNet/DarkPose test protocol:

* ground-truth boxes (non-crowd persons with at least one labelled keypoint, box score 1);
* a detection-results file (``[{image_id, category_id, bbox: [x, y, w, h], score}, ...]``, e.g. the standard
  ``COCO_val2017_detections_AP_H_56_person.json``): category 1, score ≥ threshold, in file order;
* the service's own person detector (boxes ``None`` → :meth:`PosePipeline.run` detects).

Predictions are :class:`~service.schemas.PoseResult` objects from the same pipeline the server runs
(in-process :class:`~service.pipeline.pipeline.PosePipeline`, or a REST/gRPC client per image); they are
written with :meth:`PoseResult.to_coco` (``image_id, category_id 1, keypoints [x1, y1, s1, ...], score``) by
:func:`results_entries` / :func:`write_results`, and scored on exactly the evaluated image ids.
"""

from __future__ import annotations

import contextlib
import io
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..schemas import Person, PoseOptions, PoseResult

#: The 10 standard COCO keypoint stats, in ``COCOeval.stats`` order.
STAT_NAMES: tuple[str, ...] = (
    "AP", "AP .5", "AP .75", "AP (M)", "AP (L)", "AR", "AR .5", "AR .75", "AR (M)", "AR (L)",
)  # fmt: skip

Boxes = NDArray[np.float64]  # (M, 5) x, y, w, h, score in image px


@dataclass
class EvalReport:
    """Outcome of an evaluation.

    Attributes:
        stats: the 10 COCO keypoint stats by name (fractions in [0, 1]; -1 where COCO has nothing to score).
        image_ids: the evaluated image ids.
        num_results: keypoint results (persons) scored.
        results_file: where the results JSON was written (``None`` when scoring entries in memory).
        seconds: wall time of the prediction run in s (0 for ``--preds``).
        persons_per_s: persons estimated per second of wall time (0 for ``--preds``).
    """

    stats: dict[str, float]
    image_ids: list[int]
    num_results: int
    results_file: Path | None = None
    seconds: float = 0.0
    persons_per_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "stats": self.stats,
            "num_images": len(self.image_ids),
            "num_results": self.num_results,
            "results_file": None if self.results_file is None else str(self.results_file),
            "seconds": round(self.seconds, 3),
            "persons_per_s": round(self.persons_per_s, 3),
            **self.extra,
        }


def load_coco(ann_file: str | Path) -> Any:
    """A pycocotools ``COCO`` for ``ann_file`` (its loading chatter on stdout is suppressed)."""
    from pycocotools.coco import COCO

    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(ann_file))


def select_image_ids(
    coco: Any, image_ids: Sequence[int] | None = None, limit: int | None = None
) -> list[int]:
    """Image ids to evaluate: ``image_ids`` (checked against the file) or all, sorted, first ``limit``."""
    known = set(coco.getImgIds())
    if image_ids:
        missing = [i for i in image_ids if i not in known]
        if missing:
            raise ValueError(f"image ids not in the annotation file: {missing[:10]}")
        ids = list(dict.fromkeys(int(i) for i in image_ids))
    else:
        ids = sorted(int(i) for i in known)
    return ids[:limit] if limit is not None else ids


def _gt_persons(coco: Any, img_id: int) -> list[dict[str, Any]]:
    """The official ``use_gt_bbox`` selection: non-crowd persons of positive size with a labelled keypoint."""
    return [
        a
        for a in coco.loadAnns(coco.getAnnIds(imgIds=[img_id], catIds=[1], iscrowd=False))
        if a["bbox"][2] > 0 and a["bbox"][3] > 0 and max(a.get("keypoints") or [0]) > 0
    ]


def ground_truth_boxes(coco: Any, image_ids: Iterable[int]) -> dict[int, Boxes]:
    """Per image, the ground-truth person boxes ``(M, 5)`` (score 1): non-crowd, positive size, and at least
    one labelled keypoint (the official HRNet/DarkPose ``use_gt_bbox`` selection)."""
    out: dict[int, Boxes] = {}
    for img_id in image_ids:
        rows = [[*(float(v) for v in a["bbox"]), 1.0] for a in _gt_persons(coco, img_id)]
        out[img_id] = np.asarray(rows, dtype=np.float64).reshape(-1, 5)
    return out


def ground_truth_keypoints(coco: Any, image_ids: Iterable[int]) -> dict[int, NDArray[np.float64]]:
    """Per image, the keypoints ``(M, K, 3)`` ``(x, y, v)`` of the persons :func:`ground_truth_boxes` selects,
    in the same order (row ``m`` belongs to box ``m``)."""
    out: dict[int, NDArray[np.float64]] = {}
    for img_id in image_ids:
        rows = [np.asarray(a["keypoints"], dtype=np.float64).reshape(-1, 3) for a in _gt_persons(coco, img_id)]
        out[img_id] = np.stack(rows) if rows else np.zeros((0, 0, 3))
    return out


def paired_keypoints(
    results: Mapping[int, PoseResult], gt: Mapping[int, NDArray[np.float64]]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    """Pair each ground-truth person with the prediction made from its box (``Person.box_index``; the run
    must keep every box: no OKS-NMS, no score floor). Returns ``pred (N, K, 2)``, ``gt (N, K, 2)`` and the
    annotated mask ``(N, K)`` (``v > 0``). A person without its prediction is an error."""
    preds, gts = [], []
    for img_id, g in gt.items():
        by_box = {p.box_index: p for p in results[img_id].persons}
        for m in range(len(g)):
            if m not in by_box:
                raise ValueError(f"image {img_id}: no prediction for ground-truth person {m}")
            preds.append(np.asarray(by_box[m].keypoints, np.float64)[:, :2])
            gts.append(g[m])
    if not gts:
        raise ValueError("no annotated person to score")
    g_all = np.stack(gts)
    return np.stack(preds), g_all[:, :, :2], g_all[:, :, 2] > 0


def detection_boxes(
    det_file: str | Path, image_ids: Iterable[int], min_score: float = 0.0
) -> dict[int, Boxes]:
    """Per image, the person detections of a COCO detection-results file: ``category_id`` 1 and
    ``score >= min_score``, in file order, as ``(M, 5)`` ``(x, y, w, h, score)`` image px. Images without
    detections get an empty array (they still count: their ground truth becomes misses)."""
    data = json.loads(Path(det_file).read_text())
    if not isinstance(data, list):
        raise ValueError(f"{det_file}: expected a JSON list of detection results")
    wanted = {int(i): [] for i in image_ids}  # type: dict[int, list[list[float]]]
    for d in data:
        if int(d.get("category_id", 1)) != 1 or float(d["score"]) < min_score:
            continue
        rows = wanted.get(int(d["image_id"]))
        if rows is not None:
            x, y, w, h = (float(v) for v in d["bbox"])
            rows.append([x, y, w, h, float(d["score"])])
    return {k: np.asarray(v, dtype=np.float64).reshape(-1, 5) for k, v in wanted.items()}


def oracle_results(coco: Any, image_ids: Iterable[int]) -> dict[int, PoseResult]:
    """Perfect predictions made from the ground truth (a check of the writer and scorer, not of a model):
    per non-crowd person with keypoints, its ``(x, y)`` with score 1 where labelled (v > 0) else 0, person
    score 1.0. Scored against the same file they give AP 1.0."""
    out: dict[int, PoseResult] = {}
    for img_id in image_ids:
        info = coco.loadImgs([img_id])[0]
        persons = []
        for a in coco.loadAnns(coco.getAnnIds(imgIds=[img_id], catIds=[1], iscrowd=False)):
            if int(a.get("num_keypoints", 0)) == 0:
                continue
            k = np.asarray(a["keypoints"], dtype=np.float32).reshape(-1, 3)
            k[:, 2] = (k[:, 2] > 0).astype(np.float32)
            persons.append(Person(bbox=tuple(a["bbox"]), bbox_score=1.0, score=1.0, keypoints=k))  # type: ignore[arg-type]
        out[img_id] = PoseResult(
            image_size=(int(info["width"]), int(info["height"])), persons=tuple(persons),
            model="oracle", trained=True,
        )  # fmt: skip
    return out


def results_entries(results: Mapping[int, PoseResult]) -> list[dict[str, Any]]:
    """COCO keypoint results entries for ``{image_id: PoseResult}`` (via :meth:`PoseResult.to_coco`)."""
    entries: list[dict[str, Any]] = []
    for img_id, res in results.items():
        entries.extend(res.to_coco(img_id, category_id=1))
    return entries


def write_results(path: str | Path, entries: Sequence[Mapping[str, Any]]) -> Path:
    """Write COCO results entries as JSON (the format ``COCO.loadRes`` and the COCO server accept)."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(list(entries)))
    return p


def evaluate_results(
    coco: Any, results: str | Path | Sequence[Mapping[str, Any]], image_ids: Sequence[int] | None = None
) -> dict[str, float]:
    """Score keypoint results with pycocotools ``COCOeval(gt, dt, "keypoints")``.

    Args:
        coco: the ground truth (a ``COCO``, see :func:`load_coco`).
        results: a results JSON file or its entries.
        image_ids: restrict scoring to these images (default: every image of the ground truth).

    Returns:
        the 10 standard stats by name (:data:`STAT_NAMES`); all 0 when there is no result at all.
    """
    from pycocotools.cocoeval import COCOeval

    entries = json.loads(Path(results).read_text()) if isinstance(results, str | Path) else list(results)
    if not entries:
        return dict.fromkeys(STAT_NAMES, 0.0)
    with contextlib.redirect_stdout(io.StringIO()):
        dt = coco.loadRes([dict(e) for e in entries])
        ev = COCOeval(coco, dt, "keypoints")
        if image_ids is not None:
            ev.params.imgIds = list(image_ids)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return {n: float(v) for n, v in zip(STAT_NAMES, ev.stats, strict=True)}


def format_stats(stats: Mapping[str, float]) -> str:
    """The 10 stats as a two-column table, values to 5 decimals (the COCO convention is 3)."""
    return "\n".join(f"{name:<8} {value:.5f}" for name, value in stats.items())


# ---------------------------------------------------------------------------------------------- running
Runner = Callable[[Sequence[tuple[int, Path]], Sequence[Boxes | None]], list[PoseResult]]


def inprocess_runner(pipeline: Any, options: PoseOptions, max_pixels: int = 50_000_000) -> Runner:
    """Runs a batch of images through :meth:`PosePipeline.run` in this process (one call per batch).

    EXIF orientation is ignored, as in the official pipeline (COCO's annotations are in stored pixels).
    """
    from ..pipeline.image import read_image_file

    def run(items: Sequence[tuple[int, Path]], boxes: Sequence[Boxes | None]) -> list[PoseResult]:
        images = [read_image_file(str(p), honour_exif=False, max_pixels=max_pixels) for _, p in items]
        out: list[PoseResult] = pipeline.run(images, list(boxes), options)
        return out

    return run


def client_runner(
    client: Any,
    options: PoseOptions,
    concurrency: int = 2,
    timeout_s: float | None = None,
    model: str | None = None,
) -> Runner:
    """Sends each image of a batch as one request to a running server (REST or gRPC client from
    :func:`service.client.connect`), ``concurrency`` requests in flight so the server can batch them;
    ``timeout_s`` is each request's deadline (sent to the server, which otherwise applies its default)."""
    pool = ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="posesvc-eval")

    def one(item: tuple[int, Path], b: Boxes | None) -> PoseResult:
        data = item[1].read_bytes()
        rows = None if b is None else [[float(v) for v in r] for r in b]
        res: PoseResult = client.estimate(data, rows, options, timeout_s=timeout_s, model=model)
        return res

    def run(items: Sequence[tuple[int, Path]], boxes: Sequence[Boxes | None]) -> list[PoseResult]:
        return list(pool.map(one, items, boxes))

    return run


def predict_dataset(
    runner: Runner,
    coco: Any,
    image_dir: str | Path,
    image_ids: Sequence[int],
    boxes: Mapping[int, Boxes] | None,
    batch_images: int = 8,
    progress: bool = True,
) -> tuple[dict[int, PoseResult], float]:
    """Run ``runner`` over the images in batches of ``batch_images``.

    Args:
        boxes: per image person boxes, or ``None`` for the pipeline's detector.
        progress: show a tqdm bar (on stderr) with persons/s.

    Returns:
        ``({image_id: PoseResult}, wall seconds)``.
    """
    from tqdm import tqdm

    root = Path(image_dir)
    items = [(i, root / coco.loadImgs([i])[0]["file_name"]) for i in image_ids]
    missing = [str(p) for _, p in items if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"{len(missing)} image(s) missing under {root}, e.g. {missing[0]}")
    results: dict[int, PoseResult] = {}
    persons = 0
    t0 = time.perf_counter()
    bar = tqdm(total=len(items), unit="img", disable=not progress, dynamic_ncols=True)
    try:
        for start in range(0, len(items), max(1, batch_images)):
            chunk = items[start : start + max(1, batch_images)]
            chunk_boxes = [None if boxes is None else boxes[i] for i, _ in chunk]
            for (img_id, _), res in zip(chunk, runner(chunk, chunk_boxes), strict=True):
                results[img_id] = res
                persons += len(res.persons)
            elapsed = time.perf_counter() - t0
            bar.set_postfix(persons=persons, persons_per_s=f"{persons / max(elapsed, 1e-9):.1f}")
            bar.update(len(chunk))
    finally:
        bar.close()
    return results, time.perf_counter() - t0
