"""Single-person keypoint metrics of the pose literature, for any keypoint schema: PCK@0.2 of the torso,
PDJ, strict PCP, the PCK curve's AUC, and EPE.

Each prediction is paired with one annotated person (``pred[n]`` ↔ ``gt[n]``), as these metrics assume; the
caller pairs them (the MPII records, or COCO's ground-truth boxes). No maintained Python library computes
these exactly as published (MMPose's ``PCKAccuracy``/``AUC``/``EPE`` use ``<`` and a pixel normaliser; the
reference definitions are the MATLAB files of ``bearpaw/eval_pose``), so they are implemented here once:

* **torso size** of sample ``n``: ``‖gt[left_shoulder] − gt[right_hip]‖`` (Sapp & Taskar's "torso height",
  ``eval_pck.m``; DeepPose's PDJ uses the same pair, ``eval_pdj.m``).
* **PCK@t** (torso): joint correct when ``‖pred − gt‖ / torso <= t``; per joint the fraction over samples, the
  mean over every (sample, joint); reported at t = 0.2.
* **PDJ@t**: the same detection rate over all counted joints at DeepPose's thresholds 0.1, 0.2, 0.3, 0.4.
* **AUC**: the area under the mean PCK curve over t ∈ {0, 0.01, …, 0.2}, with t rescaled to [0, 1]
  (``eval_pck.m``'s ``area_under_curve(scale01(range), pck)``, integral of the piecewise-linear curve, i.e.
  the trapezoid rule), in %.
* **strict PCP@0.5** (Ferrari et al.): a limb is correct when **both** predicted endpoints are within 0.5 of
  the ground-truth limb length of their ground-truth endpoints (``<=``, ``eval_pcp.m``); limbs are the upper
  and lower arms and legs, the torso (mid-hips → mid-shoulders) and, where the schema has them, the head
  (neck → head top).
* **EPE**: mean Euclidean distance in px over the visible joints.

Missing annotations, which LSP (the files' dataset) does not have: a joint enters only where it is visible;
a sample without a torso size (either torso joint missing, or zero length) is left out of PCK/PDJ/AUC; a limb
enters only where both ground-truth endpoints are visible and its length is positive. Fractions are in %.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from ..errors import InvalidInput
from ..zoo.keypoints import KeypointSchema

METRICS: tuple[str, ...] = ("pck", "pdj", "pcp", "auc", "epe")
PCK_THRESHOLD = 0.2
PCK_RANGE: NDArray[np.float64] = np.arange(0, 0.2 + 1e-9, 0.01)  # eval_pck.m: 0:0.01:0.2 (21 values)
PDJ_REPORTED: tuple[float, ...] = (0.1, 0.2, 0.3, 0.4)  # the thresholds eval_pdj.m prints
PCP_THRESHOLD = 0.5
_SIDES = ("left", "right")


@dataclass(frozen=True)
class KeypointSet:
    """Paired predictions and annotations.

    Attributes:
        pred: ``(N, K, 2)`` predicted joints, px.
        gt: ``(N, K, 2)`` annotated joints, px (same frame as ``pred``).
        visible: ``(N, K)`` bool, annotated joints.
        schema: joint names (for the torso pair and the limbs).
    """

    pred: NDArray[np.float64]
    gt: NDArray[np.float64]
    visible: NDArray[np.bool_]
    schema: KeypointSchema

    def __post_init__(self) -> None:
        k = self.schema.num_joints
        if self.pred.shape != self.gt.shape or self.pred.ndim != 3 or self.pred.shape[1:] != (k, 2):
            raise InvalidInput(
                f"predictions {self.pred.shape} and annotations {self.gt.shape} must be (N, {k}, 2)"
            )
        if self.visible.shape != self.pred.shape[:2]:
            raise InvalidInput(f"visibility {self.visible.shape} must be {self.pred.shape[:2]}")

    def joint(self, name: str) -> int | None:
        return self.schema.joints.index(name) if name in self.schema.joints else None


def make_keypoint_set(
    pred: NDArray[np.floating], gt: NDArray[np.floating], visible: NDArray[Any], schema: KeypointSchema
) -> KeypointSet:
    return KeypointSet(
        np.asarray(pred, np.float64)[..., :2],
        np.asarray(gt, np.float64)[..., :2],
        np.asarray(visible) > 0,
        schema,
    )


def errors_px(ks: KeypointSet) -> NDArray[np.float64]:
    """``(N, K)`` Euclidean error in px, NaN where the joint is not annotated."""
    d = np.linalg.norm(ks.pred - ks.gt, axis=-1)
    return np.where(ks.visible, d, np.nan)


def torso_sizes(ks: KeypointSet) -> NDArray[np.float64]:
    """``(N,)`` ``‖gt[left_shoulder] − gt[right_hip]‖``, NaN where either is missing or the length is 0."""
    a, b = ks.joint("left_shoulder"), ks.joint("right_hip")
    if a is None or b is None:
        raise InvalidInput(f"the {ks.schema.name} schema has no left_shoulder/right_hip: no torso size")
    size = np.linalg.norm(ks.gt[:, a] - ks.gt[:, b], axis=-1)
    ok = ks.visible[:, a] & ks.visible[:, b] & (size > 0)
    return np.where(ok, size, np.nan)


def detection_rates(
    ks: KeypointSet, thresholds: Sequence[float] | NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.int64]]:
    """Torso-normalised detection rate (``<=``) per threshold.

    Returns:
        per joint ``(T, K)`` in % (NaN for a joint never counted), the mean over all counted (sample, joint)
        pairs ``(T,)`` in %, and the counted samples per joint ``(K,)``.
    """
    norm_err = errors_px(ks) / torso_sizes(ks)[:, None]
    counted = np.isfinite(norm_err)
    counts = counted.sum(axis=0)
    t = np.asarray(thresholds, dtype=np.float64)[:, None, None]
    hits = (norm_err[None] <= t) & counted[None]
    with np.errstate(invalid="ignore", divide="ignore"):
        per_joint = 100.0 * hits.sum(axis=1) / counts
        mean = 100.0 * hits.sum(axis=(1, 2)) / counted.sum()
    return per_joint, mean, counts.astype(np.int64)


def _symmetric(ks: KeypointSet, per_joint: NDArray[np.float64]) -> dict[str, float]:
    """Per joint values with left and right averaged (``left_knee``/``right_knee`` → ``knee``)."""
    out: dict[str, float] = {}
    for i, name in enumerate(ks.schema.joints):
        side, _, part = name.partition("_")
        if side not in _SIDES:
            out[name] = float(per_joint[i])
        elif part not in out:
            other = ks.joint(f"{'right' if side == 'left' else 'left'}_{part}")
            out[part] = _mean([per_joint[i]] + ([] if other is None else [per_joint[other]]))
    return out


def _mean(values: Sequence[float]) -> float:
    """Mean of the finite values, NaN when there is none (no warning)."""
    finite = [float(v) for v in values if np.isfinite(v)]
    return sum(finite) / len(finite) if finite else float("nan")


def pck(ks: KeypointSet, threshold: float = PCK_THRESHOLD) -> dict[str, float]:
    """PCK@``threshold`` of the torso in %: per part (left/right averaged) and ``mean``."""
    per_joint, mean, _ = detection_rates(ks, [threshold])
    return {**_symmetric(ks, per_joint[0]), "mean": float(mean[0])}


def pdj(ks: KeypointSet) -> dict[str, float]:
    """PDJ in % at 0.1, 0.2, 0.3 and 0.4 of the torso diameter (mean over all counted joints)."""
    _, mean, _ = detection_rates(ks, PDJ_REPORTED)
    return {f"@{t:.1f}": float(m) for t, m in zip(PDJ_REPORTED, mean, strict=True)}


def auc(ks: KeypointSet) -> float:
    """Area under the mean torso-PCK curve over t ∈ [0, 0.2] (rescaled to [0, 1]), in %."""
    _, mean, _ = detection_rates(ks, PCK_RANGE)
    x = (PCK_RANGE - PCK_RANGE[0]) / (PCK_RANGE[-1] - PCK_RANGE[0])
    return float(np.sum((mean[1:] + mean[:-1]) * 0.5 * np.diff(x)))


def epe(ks: KeypointSet) -> float:
    """Mean end-point error in px over the annotated joints (NaN when none)."""
    e = errors_px(ks)
    return float(np.nanmean(e)) if np.isfinite(e).any() else float("nan")


def _limbs(ks: KeypointSet) -> list[tuple[str, tuple[int, ...], tuple[int, ...]]]:
    """``(name, endpoint-a joints, endpoint-b joints)``; an endpoint of several joints is their midpoint."""
    limbs: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = []
    for name, a, b in (("upper_arm", "shoulder", "elbow"), ("lower_arm", "elbow", "wrist"),
                       ("upper_leg", "hip", "knee"), ("lower_leg", "knee", "ankle")):  # fmt: skip
        for side in _SIDES:
            ja, jb = ks.joint(f"{side}_{a}"), ks.joint(f"{side}_{b}")
            if ja is not None and jb is not None:
                limbs.append((f"{side}_{name}", (ja,), (jb,)))
    hips = [ks.joint(f"{s}_hip") for s in _SIDES]
    shoulders = [ks.joint(f"{s}_shoulder") for s in _SIDES]
    if None not in hips and None not in shoulders:
        limbs.append(
            ("torso", tuple(j for j in hips if j is not None), tuple(j for j in shoulders if j is not None))
        )
    for neck, top in (("upper_neck", "head_top"), ("neck", "top_head")):
        jn, jt = ks.joint(neck), ks.joint(top)
        if jn is not None and jt is not None:
            limbs.append(("head", (jn,), (jt,)))
    return limbs


def pcp(ks: KeypointSet, threshold: float = PCP_THRESHOLD) -> dict[str, float]:
    """Strict PCP@``threshold`` in %: per limb (left/right averaged) and ``mean`` over all counted limbs."""
    correct_total = counted_total = 0
    per: dict[str, list[float]] = {}
    for name, ia, ib in _limbs(ks):
        ga, gb = ks.gt[:, list(ia)].mean(axis=1), ks.gt[:, list(ib)].mean(axis=1)
        pa, pb = ks.pred[:, list(ia)].mean(axis=1), ks.pred[:, list(ib)].mean(axis=1)
        length = np.linalg.norm(ga - gb, axis=-1)
        ok = ks.visible[:, list(ia + ib)].all(axis=1) & (length > 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            da = np.linalg.norm(pa - ga, axis=-1) / length
            db = np.linalg.norm(pb - gb, axis=-1) / length
        hit = (da <= threshold) & (db <= threshold) & ok
        correct_total += int(hit.sum())
        counted_total += int(ok.sum())
        key = name.split("_", 1)[1] if name.startswith(_SIDES) else name
        per.setdefault(key, []).append(100.0 * hit.sum() / ok.sum() if ok.any() else float("nan"))
    out = {k: _mean(v) for k, v in per.items()}
    out["mean"] = 100.0 * correct_total / counted_total if counted_total else float("nan")
    return out


def compute(ks: KeypointSet, names: Sequence[str]) -> dict[str, Any]:
    """The metrics in ``names`` (a subset of :data:`METRICS`) by name."""
    fns = {"pck": pck, "pdj": pdj, "pcp": pcp, "auc": auc, "epe": epe}
    unknown = [n for n in names if n not in fns]
    if unknown:
        raise InvalidInput(f"unknown metric(s) {unknown}; choose from {', '.join(METRICS)}")
    return {n: fns[n](ks) for n in names}


def format_metrics(values: dict[str, Any]) -> str:
    """One line per metric: ``PCK@0.2 (torso)  head 95.1  shoulder ...  mean 93.0``."""
    labels = {"pck": "PCK@0.2 (torso) %", "pdj": "PDJ (torso) %", "pcp": "strict PCP@0.5 %",
              "auc": "AUC of PCK@[0,0.2] %", "epe": "EPE px"}  # fmt: skip
    lines = []
    for name, v in values.items():
        body = "  ".join(f"{k} {x:.2f}" for k, x in v.items()) if isinstance(v, dict) else f"{v:.3f}"
        lines.append(f"{labels.get(name, name):<22} {body}")
    return "\n".join(lines)
