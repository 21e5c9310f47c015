"""The study driver: every resolution × encoding × degradation × decoder, optionally in worker processes."""

from __future__ import annotations

import os
import platform
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch

from .config import Degradation, Encoding, Log, ResolutionSpec, StudyConfig
from .data import HeatmapGeometry, Persons, heatmap_geometry, load_persons
from .score import evaluate_keypoints, pixel_errors, results_for
from .synth import Decoded, DecoderKey, decoder_keys, run_encoding, setting_seed

# ------------------------------------------------------------------------------------------------ driver


@dataclass(frozen=True)
class StudyRow:
    """One line of the results table: a (resolution, encoding, degradation, decoder) setting.

    AP* / AR: pycocotools keypoint stats (fractions). Errors are Euclidean distances to the GT keypoint:
    ``err_img_*`` in image px, ``err_hm_*`` in heatmap px; ``*_mean``/``*_median`` over all labelled
    joints (``n_joints``), ``*_enc`` over the labelled joints that were encoded (weight > 0, i.e. all but
    the ``n_dropped`` whose 3σ box lies outside the heatmap and which decode to the box corner).
    """

    resolution: str
    heatmap_w: int
    heatmap_h: int
    sigma: float
    encoding: str
    degradation: str
    decoder: str
    blur_kernel: int
    primary: bool
    n_persons: int
    n_joints: int
    n_dropped: int
    AP: float
    AP50: float
    AP75: float
    APm: float
    APl: float
    AR: float
    err_img_mean: float
    err_img_median: float
    err_img_mean_enc: float
    err_hm_mean_enc: float
    err_hm_median: float

    @property
    def decoder_label(self) -> str:
        """``argmax``, ``quarter`` or ``dark k=11``."""
        return f"dark k={self.blur_kernel}" if self.decoder == "dark" else self.decoder


@dataclass
class StudyResult:
    """All rows plus run metadata (config, seeds, hardware, timings)."""

    rows: list[StudyRow]
    meta: dict[str, Any] = field(default_factory=dict)


def _hardware() -> dict[str, Any]:
    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": np.__version__,
    }


def run_study(config: StudyConfig, log: Log | None = None) -> StudyResult:
    """Run every (resolution × encoding × degradation) heatmap setting and score every decoder on it.

    Jobs are (resolution, encoding) pairs, run in this process (``workers == 1``) or in a spawn-started
    process pool; rows come back in the canonical order (config order of resolutions, encodings,
    degradations, then decoders) either way.
    """
    say: Log = log or (lambda _msg: None)
    t0 = time.perf_counter()
    coco, persons = load_persons(config.ann_path, config.max_images)
    if len(persons) == 0:
        raise ValueError(f"no person with keypoints in {config.ann_path}")
    n_vis = int(persons.visible.sum())
    say(f"{len(persons)} persons, {n_vis} labelled joints, {len(persons.img_ids)} images")
    jobs = [(r, e) for r in config.resolutions for e in config.encodings]
    # largest heatmaps first, so the pool ends with the short jobs
    jobs.sort(key=lambda job: -(job[0].width * job[0].height * (1 + len(job[0].ablation_kernels))))
    results: dict[tuple[str, str], _JobResult] = {}
    if config.workers <= 1:
        for res, enc in jobs:
            results[(res.label, enc)] = job = _run_job_with(config, coco, persons, res, enc)
            say(job.log)
    else:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor, as_completed

        with ProcessPoolExecutor(min(config.workers, len(jobs)), mp_context=mp.get_context("spawn")) as pool:
            futures = {pool.submit(_run_job, config, res, enc): (res.label, enc) for res, enc in jobs}
            for fut in as_completed(futures):
                results[futures[fut]] = job = fut.result()
                say(job.log)
    rows = [
        row
        for res in config.resolutions
        for enc in config.encodings
        for row in results[(res.label, enc)].rows
    ]
    runtime = time.perf_counter() - t0
    meta: dict[str, Any] = {
        "ann_path": str(config.ann_path),
        "n_persons": len(persons),
        "n_images": len(persons.img_ids),
        "n_labelled_joints": n_vis,
        "seed": config.seed,
        "setting_seeds": {
            f"{r.label}|{d.label}": setting_seed(config.seed, r, d)
            for r in config.resolutions
            for d in config.degradations
        },
        "chunk_pixels": config.chunk_pixels,
        "tune_malloc": config.tune_malloc,
        "max_images": config.max_images,
        "torch_threads_per_worker": config.threads,
        "workers": config.workers,
        "resolutions": [asdict(r) for r in config.resolutions],
        "degradations": [asdict(d) for d in config.degradations],
        "encodings": list(config.encodings),
        "decoders": list(config.decoders),
        "runtime_s": round(runtime, 2),
        "job_s": {f"{k[0]}|{k[1]}": round(v.seconds, 2) for k, v in results.items()},
        "hardware": _hardware(),
    }
    say(f"done in {runtime:.1f}s")
    return StudyResult(rows, meta)


def keep_freed_memory() -> bool:
    """glibc only: stop returning freed memory to the OS (``mallopt``: mmap threshold 32 MB, trim threshold
    1 GB) for the rest of the process; returns whether it was applied.

    PyTorch's CPU allocator is plain ``malloc``. With glibc's defaults the large per-chunk temporaries of
    the study (heatmaps, the float64 blur's im2col buffer) are mmapped or trimmed away and page-faulted
    afresh on every call: on the 2-vCPU study machine that made system time exceed user time (87 M minor
    faults in the full run) and the whole study ~3× slower. The cost is that up to ~1 GB of freed heap stays
    with the process.
    """
    if platform.system() != "Linux":
        return False
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_threshold = -1, -3
        ok = libc.mallopt(m_mmap_threshold, 32 * 1024 * 1024) == 1
        return bool(ok and libc.mallopt(m_trim_threshold, 1 << 30) == 1)
    except (OSError, AttributeError):
        return False


@dataclass(frozen=True)
class _JobResult:
    rows: list[StudyRow]
    seconds: float
    log: str


def _run_job(config: StudyConfig, res: ResolutionSpec, encoding: Encoding) -> _JobResult:
    """Pool entry point: load the annotations in the worker, then :func:`_run_job_with`."""
    coco, persons = load_persons(config.ann_path, config.max_images)
    return _run_job_with(config, coco, persons, res, encoding)


def _run_job_with(
    config: StudyConfig, coco: Any, persons: Persons, res: ResolutionSpec, encoding: Encoding
) -> _JobResult:
    """All degradations × decoders of one (resolution, encoding): heatmaps, decoding and COCO scoring."""
    threads_before = torch.get_num_threads()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    if config.tune_malloc:
        keep_freed_memory()
    try:
        t1 = time.perf_counter()
        geo = heatmap_geometry(persons, res)
        keys = decoder_keys(res, config.decoders)
        planes = max(1, config.chunk_pixels // (res.width * res.height))
        decoded = run_encoding(persons, geo, res, encoding, config.degradations, keys, config.seed, planes)
        t2 = time.perf_counter()
        rows: list[StudyRow] = []
        lines = []
        for deg in config.degradations:
            for key in keys:
                rows.append(_score(coco, persons, geo, res, encoding, deg, key, decoded[(deg.label, key)]))
            aps = "  ".join(f"{r.decoder_label} {100 * r.AP:.2f}" for r in rows[-len(keys) :])
            lines.append(f"  {res.label} {encoding:9s} {deg.label:9s} AP: {aps}")
        t3 = time.perf_counter()
        head = f"{res.label} {encoding}: heatmaps + decoding {t2 - t1:.1f}s, COCO scoring {t3 - t2:.1f}s"
        return _JobResult(rows, t3 - t1, "\n".join([head, *lines]))
    finally:
        torch.set_num_threads(threads_before)


def _score(
    coco: Any,
    persons: Persons,
    geo: HeatmapGeometry,
    res: ResolutionSpec,
    encoding: Encoding,
    deg: Degradation,
    key: DecoderKey,
    d: Decoded,
) -> StudyRow:
    stats = evaluate_keypoints(coco, results_for(persons, d.coords_img, d.scores), persons.img_ids)
    enc = persons.visible & ~d.dropped
    e_img = pixel_errors(d.coords_img, persons.keypoints, persons.visible)
    e_img_enc = pixel_errors(d.coords_img, persons.keypoints, enc)
    e_hm_enc = pixel_errors(d.coords_hm, geo.keypoints_hm, enc)
    e_hm = pixel_errors(d.coords_hm, geo.keypoints_hm, persons.visible)
    return StudyRow(
        resolution=res.label, heatmap_w=res.width, heatmap_h=res.height, sigma=res.sigma,
        encoding=encoding, degradation=deg.label, decoder=key[0], blur_kernel=key[1],
        primary=key[1] in (0, res.blur_kernel), n_persons=len(persons), n_joints=int(persons.visible.sum()),
        n_dropped=int(d.dropped.sum()),
        AP=stats["AP"], AP50=stats["AP50"], AP75=stats["AP75"], APm=stats["APm"], APl=stats["APl"],
        AR=stats["AR"], err_img_mean=e_img[0], err_img_median=e_img[1], err_img_mean_enc=e_img_enc[0],
        err_hm_mean_enc=e_hm_enc[0], err_hm_median=e_hm[1],
    )  # fmt: skip
