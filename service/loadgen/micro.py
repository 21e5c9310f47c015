"""Micro-benchmarks of the pipeline's pieces, in-process (``posesvc bench --micro``).

All figures are per person (one person = one crop), median over ``reps`` interleaved repetitions, in ms:

* ``crop``: box → affine → warped crop → normalised tensor;
* ``forward``: the network alone on the flip-test batch (2N) and without flip (N), per precision
  (``fp32``; ``bf16`` autocast on request: ~10x slower than fp32 on CPUs without AMX; ``fp16`` autocast on
  CUDA only);
* ``pipeline``: :meth:`PoseEstimator.estimate` end to end (crop, forward, flip merge, decode, rescoring,
  OKS-NMS), flip on and off, per precision;
* ``decode``: DARK vectorised (batched over N×K: the NumPy kernel that CPU tensors take, and the torch one that
  GPU tensors take) vs the per-joint numpy/OpenCV loop, and the standard (quarter offset) decoder.
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ..codecs.functional import (
    dark_decode,
    dark_decode_torch,
    quarter_offset_decode,
    unbiased_gaussian_targets,
)
from ..pipeline.crop import normalise
from ..pipeline.estimator import PoseEstimator, Precision
from ..schemas import PoseOptions
from .reference_loop import dark_decode_loop


@dataclass(frozen=True)
class MicroRow:
    """One measurement: ``ms_per_person`` (median) and the implied ``persons_per_s``."""

    group: str
    name: str
    ms_per_person: float
    note: str = ""

    @property
    def persons_per_s(self) -> float:
        return 1000.0 / self.ms_per_person if self.ms_per_person > 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        return {"group": self.group, "name": self.name, "ms_per_person": round(self.ms_per_person, 4),
                "persons_per_s": round(self.persons_per_s, 2), "note": self.note}  # fmt: skip


def _median(fn: Callable[[], object], reps: int, sync: Callable[[], None]) -> float:
    ts = []
    for _ in range(max(1, reps)):
        t = time.perf_counter()
        fn()
        sync()
        ts.append(time.perf_counter() - t)
    return statistics.median(ts)


def _synthetic(persons: int, seed: int = 0) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    boxes = np.array([[20 + 50 * (i % 10), 40 + 10 * (i % 7), 120, 300, 0.9] for i in range(persons)], float)
    return img, boxes


def micro_bench(
    estimator: PoseEstimator, persons: int = 8, reps: int = 5, decode_persons: int = 64,
    precisions: tuple[Precision, ...] | None = None, loop_decode: bool = True,
    progress: Callable[[str], None] | None = None,
) -> list[MicroRow]:  # fmt: skip
    """Measure the pieces on ``estimator``'s card and device with ``persons`` crops per batch.

    ``precisions`` default: fp32 on CPU; fp32 and fp16 on CUDA. ``progress(step)`` is called before each
    step (they take minutes on a small CPU).
    """
    say = progress or (lambda _step: None)
    dev = estimator.device

    def sync() -> None:
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    card = estimator.card
    if precisions is None:
        precisions = ("fp32", "fp16") if dev.type == "cuda" else ("fp32",)
    assert precisions is not None
    if "fp16" in precisions and dev.type != "cuda":
        raise ValueError("fp16 needs a CUDA device; on CPU use fp32 or bf16")
    img, boxes = _synthetic(persons)
    rows: list[MicroRow] = []

    def crop() -> torch.Tensor:
        prep = estimator.prepare(img, boxes)
        return normalise(torch.from_numpy(prep.crops).to(dev), card.mean, card.std)

    say("crop")
    x = crop()
    rows.append(MicroRow("crop", "crop + normalise", _median(crop, reps, sync) * 1000 / persons))
    x2 = torch.cat([x, x.flip(-1)])
    ests: dict[str, PoseEstimator] = {}
    for prec in precisions:
        cfg = dataclasses.replace(estimator.config, precision=prec, max_batch_crops=persons)
        ests[prec] = PoseEstimator(card, estimator.net, trained=estimator.trained, device=dev, config=cfg)
    fns: dict[tuple[str, str], Callable[[], object]] = {}

    def forward(e: PoseEstimator, t: torch.Tensor) -> Callable[[], object]:
        return lambda: e.forward(t)

    def pipeline(e: PoseEstimator, flip: bool) -> Callable[[], object]:
        return lambda: e.estimate([img], [boxes], PoseOptions(flip=flip))

    for name, e in ests.items():
        fns[("forward", f"{name} flip (batch {2 * persons})")] = forward(e, x2)
        fns[("forward", f"{name} no flip (batch {persons})")] = forward(e, x)
        fns[("pipeline", f"{name} flip on")] = pipeline(e, True)
        fns[("pipeline", f"{name} flip off")] = pipeline(e, False)
    for (group, name), fn in fns.items():  # warm-up (oneDNN / cuDNN kernel selection)
        say(f"warm-up {group} {name}")
        fn()
    sync()
    times: dict[tuple[str, str], list[float]] = {k: [] for k in fns}
    for rep in range(max(1, reps)):  # interleaved, so machine noise hits every variant alike
        say(f"round {rep + 1}/{max(1, reps)}: forward and pipeline, {len(fns)} variants")
        for k, fn in fns.items():
            times[k].append(_median(fn, 1, sync))
    for (group, name), ts in times.items():
        rows.append(MicroRow(group, name, statistics.median(ts) * 1000 / persons))
    say("decoders")
    rows.extend(_decode_rows(decode_persons, card.num_joints, card.heatmap_size, reps, loop_decode))
    return rows


def _decode_rows(n: int, k: int, hm_size: tuple[int, int], reps: int, loop: bool) -> list[MicroRow]:
    w, h = hm_size
    rng = np.random.default_rng(0)
    pts = torch.from_numpy(np.stack([rng.uniform(4, w - 4, (n, k)), rng.uniform(4, h - 4, (n, k))], -1))
    hm, _ = unbiased_gaussian_targets(pts, torch.ones(n, k), (w, h), 2.0)
    hm = (hm + 0.05 * torch.rand_like(hm)).float()
    hm_np = hm.numpy()
    none = lambda: None  # noqa: E731
    dark_decode(hm, 11)
    quarter_offset_decode(hm)
    dark_decode_torch(hm, 11)
    rows = [
        MicroRow("decode", f"DARK vectorised ({n}x{k} joints)", _median(lambda: dark_decode(hm, 11), reps, none) * 1000 / n, "NumPy kernel (CPU path)"),
        MicroRow("decode", f"DARK torch ops ({n}x{k})", _median(lambda: dark_decode_torch(hm, 11), reps, none) * 1000 / n, "GPU path, run on CPU"),
        MicroRow("decode", f"standard vectorised ({n}x{k})", _median(lambda: quarter_offset_decode(hm), reps, none) * 1000 / n),
    ]  # fmt: skip
    if loop:
        t = _median(lambda: dark_decode_loop(hm_np, 11), max(1, reps // 2), none) * 1000 / n
        c1, _ = dark_decode(hm, 11)
        c2, _ = dark_decode_loop(hm_np, 11)
        diff = float(np.abs(c1.numpy() - c2).max())
        rows.append(MicroRow("decode", f"DARK per-joint loop ({n}x{k})", t, f"max coord diff {diff:.1e} px"))
    return rows


def format_rows(rows: list[MicroRow]) -> str:
    """A plain-text table: group, variant, ms/person, persons/s, note."""
    lines = [f"{'group':<9} {'variant':<34} {'ms/person':>10} {'persons/s':>10}  note"]
    for r in rows:
        lines.append(f"{r.group:<9} {r.name:<34} {r.ms_per_person:>10.3f} {r.persons_per_s:>10.1f}  {r.note}")
    return "\n".join(lines)
