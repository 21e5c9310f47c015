"""Keypoint schemas: joint names, flip pairs, OKS sigmas and skeleton, defined once per dataset.

Every layer (pipeline, metrics, tracking, smoothing, rendering, the web page, the CLI, eval) reads the
schema from the model card (``card.keypoints``) instead of assuming COCO's 17 joints. Registered schemas:
``coco17``, ``mpii16`` and ``crowdpose14`` (joint orders, sigmas and links as in MMPose's dataset configs;
MPII's sigmas are MMPose's, adapted from COCO). A card may also define its own schema inline.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import CardError


@dataclass(frozen=True)
class KeypointSchema:
    """One dataset's keypoint definition.

    Attributes:
        name: registry name (``coco17``), or the card's name for an inline schema.
        joints: joint names in channel order (K).
        flip_pairs: index pairs swapped by a horizontal flip.
        sigmas: per-joint OKS sigmas (K), as COCOeval uses them (COCO's ``/10`` already applied).
        skeleton: index pairs drawn as limbs.
        dataset: the dataset the schema comes from (``COCO``, ``MPII``, ``CrowdPose``; empty for a card's own).
    """

    name: str
    joints: tuple[str, ...]
    flip_pairs: tuple[tuple[int, int], ...]
    sigmas: tuple[float, ...]
    skeleton: tuple[tuple[int, int], ...]
    dataset: str = ""

    def __post_init__(self) -> None:
        k = len(self.joints)
        if k == 0 or len(set(self.joints)) != k:
            raise CardError(f"keypoint schema {self.name!r}: joint names must be unique and non-empty")
        if len(self.sigmas) != k:
            raise CardError(f"keypoint schema {self.name!r}: {len(self.sigmas)} sigmas for {k} joints")
        for what, pairs in (("flip_pairs", self.flip_pairs), ("skeleton", self.skeleton)):
            for a, b in pairs:
                if not (0 <= a < k and 0 <= b < k) or a == b:
                    raise CardError(f"keypoint schema {self.name!r}: {what} entry {(a, b)} is not a pair of joints")

    @property
    def num_joints(self) -> int:
        return len(self.joints)

    @property
    def flip_permutation(self) -> tuple[int, ...]:
        """Channel permutation that swaps every flip pair (identity elsewhere)."""
        perm = list(range(self.num_joints))
        for a, b in self.flip_pairs:
            perm[a], perm[b] = b, a
        return tuple(perm)


def _links(joints: Sequence[str], named: Sequence[tuple[str, str]]) -> tuple[tuple[int, int], ...]:
    index = {n: i for i, n in enumerate(joints)}
    return tuple((index[a], index[b]) for a, b in named)


COCO17 = KeypointSchema(
    name="coco17",
    dataset="COCO",
    joints=(
        "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder", "right_shoulder",
        "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip", "right_hip",
        "left_knee", "right_knee", "left_ankle", "right_ankle",
    ),
    flip_pairs=((1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16)),
    sigmas=tuple(s / 10.0 for s in (
        0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62, 1.07, 1.07, 0.87, 0.87, 0.89, 0.89,
    )),
    skeleton=(
        (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7), (6, 8), (7, 9),
        (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
    ),
)  # fmt: skip

_MPII_JOINTS = (
    "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle", "pelvis", "thorax",
    "upper_neck", "head_top", "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow",
    "left_wrist",
)  # fmt: skip
MPII16 = KeypointSchema(
    name="mpii16",
    dataset="MPII",
    joints=_MPII_JOINTS,
    flip_pairs=((0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13)),
    sigmas=(0.089, 0.083, 0.107, 0.107, 0.083, 0.089, 0.026, 0.026, 0.026, 0.026,
            0.062, 0.072, 0.179, 0.179, 0.072, 0.062),
    skeleton=_links(_MPII_JOINTS, (
        ("right_ankle", "right_knee"), ("right_knee", "right_hip"), ("right_hip", "pelvis"),
        ("pelvis", "left_hip"), ("left_hip", "left_knee"), ("left_knee", "left_ankle"), ("pelvis", "thorax"),
        ("thorax", "upper_neck"), ("upper_neck", "head_top"), ("upper_neck", "right_shoulder"),
        ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"), ("upper_neck", "left_shoulder"),
        ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
    )),
)

_CROWDPOSE_JOINTS = (
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip",
    "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle", "top_head", "neck",
)  # fmt: skip
CROWDPOSE14 = KeypointSchema(
    name="crowdpose14",
    dataset="CrowdPose",
    joints=_CROWDPOSE_JOINTS,
    flip_pairs=((0, 1), (2, 3), (4, 5), (6, 7), (8, 9), (10, 11)),
    sigmas=(0.079, 0.079, 0.072, 0.072, 0.062, 0.062, 0.107, 0.107, 0.087, 0.087, 0.089, 0.089, 0.079, 0.079),
    skeleton=_links(_CROWDPOSE_JOINTS, (
        ("left_ankle", "left_knee"), ("left_knee", "left_hip"), ("right_ankle", "right_knee"),
        ("right_knee", "right_hip"), ("left_hip", "right_hip"), ("left_shoulder", "left_hip"),
        ("right_shoulder", "right_hip"), ("left_shoulder", "right_shoulder"), ("left_shoulder", "left_elbow"),
        ("right_shoulder", "right_elbow"), ("left_elbow", "left_wrist"), ("right_elbow", "right_wrist"),
        ("top_head", "neck"), ("right_shoulder", "neck"), ("left_shoulder", "neck"),
    )),
)

SCHEMAS: dict[str, KeypointSchema] = {s.name: s for s in (COCO17, MPII16, CROWDPOSE14)}


def get_schema(name: str) -> KeypointSchema:
    try:
        return SCHEMAS[name]
    except KeyError:
        raise CardError(f"unknown keypoint schema {name!r}; known: {', '.join(sorted(SCHEMAS))}") from None


def all_joint_names() -> tuple[str, ...]:
    """Every joint name of every registered schema (a bounded label set for metrics), sorted."""
    return tuple(sorted({j for s in SCHEMAS.values() for j in s.joints}))


def schema_for_joints(joints: Sequence[str]) -> KeypointSchema | None:
    """The registered schema with exactly these joints in this order, if any (e.g. for a remote result)."""
    names = tuple(joints)
    return next((s for s in SCHEMAS.values() if s.joints == names), None)
