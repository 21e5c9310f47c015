"""MPII Human Pose: the official annotation geometry and the official PCKh evaluation.

Both are exactly ``lib/dataset/mpii.py`` of HRNet / DarkPose (the two files are identical):

* :func:`load_mpii_records` is ``_get_db``: ``annot/<set>.json`` records ``{image, center, scale, joints[16],
  joints_vis[16]}`` in MATLAB 1-based pixels; the centre moves **down by 15·scale** (unpadded) and the scale is
  padded ×1.25, both only when ``center[0] != -1``; then the centre and the joints move to 0-based (``-1``).
  Everything stays float64 (the affine is built from float64 points, as the official code does).
* :func:`pckh` is ``evaluate``: predictions (0-based image px) get ``+1``, the error of joint ``j`` of sample
  ``n`` is ``‖pred − gt‖ / (0.6·‖head-box diagonal‖)``, correct when ``<=`` the threshold, visibility from the
  gt file's ``jnt_missing``; ``Mean`` is the **count-weighted** mean over the 14 joints other than pelvis and
  thorax, and the official ``Mean@0.1`` is ``pckAll[11]``, i.e. **threshold 0.11** (``arange(0, 0.51, 0.01)[11]``,
  a known slip in the official code, kept so the published numbers reproduce). :func:`format_pckh` prints the
  official table and says so; :attr:`PckhReport.mean_at_010` is the PCKh at a true 0.10 for comparison.

The ground truth is the ``gt_valid.mat`` of the official release (``dataset_joints``, ``jnt_missing``
``(16, N)``, ``pos_gt_src`` ``(16, 2, N)`` 1-based, ``headboxes_src`` ``(2, 2, N)``), read with SciPy.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from ..errors import InvalidInput

if TYPE_CHECKING:
    from ..pipeline.estimator import PoseEstimator

NUM_JOINTS = 16
#: PCKh's head-size factor (``SC_BIAS``) and the table's threshold
SC_BIAS = 0.6
THRESHOLD = 0.5
#: the official curve's thresholds, ``np.arange(0, 0.5 + 0.01, 0.01)`` (51 values)
THRESHOLDS: NDArray[np.float64] = np.arange(0, 0.5 + 0.01, 0.01)
#: the row of :data:`THRESHOLDS` the official code labels ``Mean@0.1`` (its threshold is 0.11)
OFFICIAL_AT01_ROW = 11
#: the columns of the official table, in its order
TABLE_NAMES: tuple[str, ...] = (
    "Head",
    "Shoulder",
    "Elbow",
    "Wrist",
    "Hip",
    "Knee",
    "Ankle",
    "Mean",
    "Mean@0.1",
)
# the gt file's joint abbreviations per table column (left, right)
_PARTS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("Head", ("head",)),
    ("Shoulder", ("lsho", "rsho")),
    ("Elbow", ("lelb", "relb")),
    ("Wrist", ("lwri", "rwri")),
    ("Hip", ("lhip", "rhip")),
    ("Knee", ("lkne", "rkne")),
    ("Ankle", ("lank", "rank")),
)


@dataclass(frozen=True)
class MpiiRecords:
    """MPII annotation records after the official ``_get_db`` (N records, 16 joints, 0-based px, float64).

    Attributes:
        images: image file name per record.
        center: ``(N, 2)`` crop centre (shifted down by 15·scale, then −1).
        scale: ``(N, 2)`` crop side / 200 px (×1.25 padding), square.
        joints: ``(N, 16, 2)`` annotated joints, 0-based (``-2`` where the file says ``-1`` for missing).
        joints_vis: ``(N, 16)`` visibility flags from the file.
    """

    images: tuple[str, ...]
    center: NDArray[np.float64]
    scale: NDArray[np.float64]
    joints: NDArray[np.float64]
    joints_vis: NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.images)


def mpii_center_scale(
    center: NDArray[np.floating], scale: NDArray[np.floating]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Official ``_get_db`` geometry, vectorised: ``(N, 2)`` 1-based centres and ``(N,)`` scales → 0-based
    centres ``(N, 2)`` and square scales ``(N, 2)`` (float64)."""
    c = np.array(center, dtype=np.float64).reshape(-1, 2)
    s = np.repeat(np.asarray(scale, dtype=np.float64).reshape(-1, 1), 2, axis=1)
    adjust = c[:, 0] != -1
    c[:, 1] = np.where(adjust, c[:, 1] + 15 * s[:, 1], c[:, 1])
    s = np.where(adjust[:, None], s * 1.25, s)
    return c - 1, s


def parse_mpii_records(entries: Sequence[dict[str, Any]], source: str = "annotations") -> MpiiRecords:
    """Records in ``annot/<set>.json`` form → :class:`MpiiRecords` (a clear error names a bad record)."""
    if not isinstance(entries, list) or not entries:
        raise InvalidInput(f"{source}: expected a non-empty JSON list of MPII records")
    images, centers, scales, joints, vis = [], [], [], [], []
    for i, a in enumerate(entries):
        try:
            images.append(str(a["image"]))
            centers.append([float(v) for v in a["center"]])
            scales.append(float(a["scale"]))
            j = np.asarray(a.get("joints", np.zeros((NUM_JOINTS, 2))), dtype=np.float64)
            v = np.asarray(a.get("joints_vis", np.zeros(NUM_JOINTS)), dtype=np.float64)
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"{source}: record {i} is not an MPII record ({exc!r})") from None
        if len(centers[-1]) != 2 or j.shape != (NUM_JOINTS, 2) or v.shape != (NUM_JOINTS,):
            raise InvalidInput(f"{source}: record {i} needs center[2], joints[16][2] and joints_vis[16]")
        joints.append(j[:, :2] - 1)
        vis.append(v)
    c, s = mpii_center_scale(np.array(centers), np.array(scales))
    return MpiiRecords(tuple(images), c, s, np.stack(joints), np.stack(vis))


def load_mpii_records(path: str | Path) -> MpiiRecords:
    """Read ``annot/valid.json`` (or any set in that format)."""
    p = Path(path)
    try:
        entries = json.loads(p.read_text())
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"cannot read MPII annotations {p}: {exc}") from None
    return parse_mpii_records(entries, str(p))


@dataclass(frozen=True)
class MpiiGroundTruth:
    """The official ``gt_<set>.mat``.

    Attributes:
        dataset_joints: ``(16,)`` joint abbreviations (``rank rkne ... lwri``).
        jnt_missing: ``(16, N)`` 1 where a joint is not annotated.
        pos_gt_src: ``(16, 2, N)`` 1-based joint positions, px.
        headboxes_src: ``(2, 2, N)`` head box ``[corner (top-left, bottom-right), xy, n]``, px.
    """

    dataset_joints: tuple[str, ...]
    jnt_missing: NDArray[np.integer]
    pos_gt_src: NDArray[np.float64]
    headboxes_src: NDArray[np.float64]

    @property
    def num_samples(self) -> int:
        return int(self.pos_gt_src.shape[2])

    def joint(self, abbreviation: str) -> int:
        try:
            return self.dataset_joints.index(abbreviation)
        except ValueError:
            raise InvalidInput(f"the MPII ground truth has no joint {abbreviation!r}") from None


def load_mpii_gt(path: str | Path) -> MpiiGroundTruth:
    """Read a ``gt_valid.mat``-format file with :func:`scipy.io.loadmat` (as the official code does)."""
    from scipy.io import loadmat

    try:
        d = loadmat(str(path))
        names = np.asarray(d["dataset_joints"]).ravel()
        joints = tuple(str(np.asarray(n).ravel()[0]) for n in names)
        gt = MpiiGroundTruth(joints, d["jnt_missing"], np.asarray(d["pos_gt_src"], np.float64),
                             np.asarray(d["headboxes_src"], np.float64))  # fmt: skip
    except (OSError, KeyError, ValueError, IndexError, TypeError) as exc:
        raise InvalidInput(f"cannot read MPII ground truth {path}: {exc}") from None
    if len(joints) != NUM_JOINTS or gt.pos_gt_src.shape[:2] != (NUM_JOINTS, 2):
        raise InvalidInput(f"{path}: expected 16 joints, pos_gt_src (16, 2, N); got {gt.pos_gt_src.shape}")
    return gt


@dataclass(frozen=True)
class PckhReport:
    """Official PCKh of N samples.

    Attributes:
        name_value: the official table, ``TABLE_NAMES`` → PCKh in %; ``Mean@0.1`` is at threshold 0.11.
        pck_all: ``(51, 16)`` PCKh in % per threshold of :data:`THRESHOLDS` and joint (gt file order).
        joint_counts: ``(16,)`` visible joints per joint.
        mean_at_010: the count-weighted mean at a true threshold 0.10 (``pck_all[10]``), for comparison.
    """

    name_value: dict[str, float]
    pck_all: NDArray[np.float64]
    joint_counts: NDArray[np.int64]
    mean_at_010: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "pckh": dict(self.name_value),
            "mean_at_0.10": self.mean_at_010,
            "note": "Mean@0.1 is the official lib/dataset/mpii.py figure, taken at threshold 0.11 (pckAll[11])",
        }


def pckh(preds: NDArray[np.floating], gt: MpiiGroundTruth) -> PckhReport:
    """Official ``MPIIDataset.evaluate``.

    Args:
        preds: ``(N, 16, 2)`` predictions in **0-based** image px (the pipeline's), one per gt sample, in the
            gt file's joint order.
        gt: the ground truth.
    """
    p = np.asarray(preds, dtype=np.float64)
    if p.ndim != 3 or p.shape[1] != NUM_JOINTS or p.shape[2] < 2 or p.shape[0] != gt.num_samples:
        raise InvalidInput(
            f"predictions {p.shape} do not match the ground truth: expected ({gt.num_samples}, 16, 2)"
        )
    preds1 = p[:, :, 0:2] + 1.0  # official: 0-based -> 1-based
    pos_pred_src = np.transpose(preds1, [1, 2, 0])
    jnt_visible = 1 - gt.jnt_missing
    uv_err = np.linalg.norm(pos_pred_src - gt.pos_gt_src, axis=1)
    headsizes = np.linalg.norm(gt.headboxes_src[1, :, :] - gt.headboxes_src[0, :, :], axis=0)
    headsizes *= SC_BIAS
    scale = np.multiply(headsizes, np.ones((len(uv_err), 1)))
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled_uv_err = np.multiply(np.divide(uv_err, scale), jnt_visible)
        jnt_count = np.sum(jnt_visible, axis=1)
        pck_all = np.zeros((len(THRESHOLDS), NUM_JOINTS))
        for r, t in enumerate(THRESHOLDS):
            pck_all[r, :] = np.divide(
                100.0 * np.sum(np.multiply(scaled_uv_err <= t, jnt_visible), axis=1), jnt_count
            )
        pck = np.divide(
            100.0 * np.sum(np.multiply(scaled_uv_err <= THRESHOLD, jnt_visible), axis=1), jnt_count
        )
    masked = np.ma.array(pck, mask=False)
    masked.mask[6:8] = True  # type: ignore[index]
    counts = np.ma.array(jnt_count, mask=False)
    counts.mask[6:8] = True  # type: ignore[index]
    ratio = counts / np.sum(counts).astype(np.float64)
    values: dict[str, float] = {}
    for name, parts in _PARTS:
        idx = [gt.joint(a) for a in parts]
        values[name] = (
            float(masked[idx[0]]) if len(idx) == 1 else float(0.5 * (masked[idx[0]] + masked[idx[1]]))
        )
    values["Mean"] = float(np.sum(masked * ratio))
    values[TABLE_NAMES[-1]] = float(np.sum(pck_all[OFFICIAL_AT01_ROW, :] * ratio))
    return PckhReport(values, pck_all, np.asarray(jnt_count, np.int64), float(np.sum(pck_all[10, :] * ratio)))


def format_pckh(report: PckhReport, arch: str = "posesvc") -> str:
    """The official ``_print_name_value`` table (3 decimals), plus a line on what ``Mean@0.1`` means."""
    names = list(report.name_value)
    arch = arch[:8] + "..." if len(arch) > 15 else arch
    lines = [
        "| Arch " + " ".join(f"| {n}" for n in names) + " |",
        "|---" * (len(names) + 1) + "|",
        "| " + arch + " " + " ".join(f"| {v:.3f}" for v in report.name_value.values()) + " |",
        f"Mean@0.1 is the official figure, taken at threshold 0.11 (pckAll[11] of lib/dataset/mpii.py); "
        f"at a true 0.10 the mean is {report.mean_at_010:.3f}.",
    ]
    return "\n".join(lines)


def load_mpii_preds(path: str | Path) -> NDArray[np.float64]:
    """Predictions written as the official ``pred.mat`` (``preds`` ``(N, 16, 2)``, **1-based**) or as JSON
    ``{"preds": [[[x, y], ...16], ...]}`` (1-based as well) → 0-based ``(N, 16, 2)``."""
    p = Path(path)
    try:
        if p.suffix.lower() == ".mat":
            from scipy.io import loadmat

            arr = np.asarray(loadmat(str(p))["preds"], dtype=np.float64)
        else:
            arr = np.asarray(json.loads(p.read_text())["preds"], dtype=np.float64)
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise InvalidInput(f"cannot read MPII predictions {p}: {exc}") from None
    if arr.ndim != 3 or arr.shape[1:] != (NUM_JOINTS, 2):
        raise InvalidInput(f"{p}: expected preds of shape (N, 16, 2), got {arr.shape}")
    return arr - 1.0


def write_mpii_preds(path: str | Path, preds: NDArray[np.floating]) -> Path:
    """Write 0-based ``(N, 16, 2)`` predictions as the official ``pred.mat`` (1-based, ``savemat``)."""
    from scipy.io import savemat

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    savemat(str(out), mdict={"preds": np.asarray(preds, np.float64)[:, :, 0:2] + 1.0})
    return out


def predict_records(
    estimator: PoseEstimator,
    records: MpiiRecords,
    image_dir: str | Path,
    *,
    flip: bool = True,
    batch_images: int = 8,
    progress: bool = False,
) -> NDArray[np.float64]:
    """The official MPII test path (``TEST.USE_GT_BBOX true``): crop every record at its annotated centre and
    scale, flip test, decode → ``(N, 16, 2)`` 0-based image px, in record order. Records of one image share
    its decode; images are estimated ``batch_images`` at a time."""
    from ..pipeline.image import read_image_file

    if estimator.card.num_joints != NUM_JOINTS:
        raise InvalidInput(
            f"model {estimator.card.name} predicts {estimator.card.num_joints} joints; MPII needs 16"
        )
    root = Path(image_dir)
    by_image: dict[str, list[int]] = {}
    for i, name in enumerate(records.images):
        by_image.setdefault(name, []).append(i)
    names = list(by_image)
    preds = np.zeros((len(records), NUM_JOINTS, 2), dtype=np.float64)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(records), unit="person", desc="mpii")
    for start in range(0, len(names), batch_images):
        chunk = names[start : start + batch_images]
        prepared = []
        for name in chunk:
            path = root / name
            if not path.is_file():
                raise InvalidInput(f"image {name} of the MPII annotations is not in {root}")
            idx = by_image[name]
            image = read_image_file(str(path), honour_exif=False)
            prepared.append(estimator.prepare_at(image, records.center[idx], records.scale[idx]))
        kpts = estimator.keypoints(prepared, [flip] * len(prepared))
        rows = [i for name in chunk for i in by_image[name]]
        preds[rows] = kpts[:, :, :2]
        if bar is not None:
            bar.update(len(rows))
    if bar is not None:
        bar.close()
    return preds
