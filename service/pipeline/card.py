"""Model cards: ``models/<name>.toml`` describes a pose model as data (architecture, geometry, codec,
checkpoint, published accuracy). Cards are found by name in the models directory or read from any path.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ..backends.select import CHOICES as BACKEND_CHOICES
from ..codecs import codec_names
from ..errors import CardError
from ..nets import get_net
from ..zoo.keypoints import COCO17, KeypointSchema, get_schema, schema_for_joints
from .geometry import CONVENTIONS, Convention


@dataclass(frozen=True)
class CheckpointInfo:
    """Where the weights come from. ``sha256`` may be a full digest or a published prefix (MMPose names
    files ``...-<first 8 hex of sha256>_<date>.pth``)."""

    format: str = "darkpose"
    url: str = ""
    sha256: str = ""
    filename: str = ""
    how_to_get: str = ""


@dataclass(frozen=True)
class ModelCard:
    """Everything the pipeline needs to run one pose model, read from a TOML card."""

    name: str
    description: str
    architecture: str
    arch_params: dict[str, Any]
    input_size: tuple[int, int]  # (W, H)
    heatmap_size: tuple[int, int]  # (W, H)
    keypoints: KeypointSchema
    convention: Convention
    flip_shift: bool
    codec: str
    blur_kernel: int
    sigma: float
    padding: float = 1.25
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    #: channel order the network was trained on (``[input] color``): DarkPose's ResNet and Hourglass configs
    #: feed **BGR** crops (``COLOR_RGB false``) normalised with the RGB-ordered mean/std; HRNet feeds RGB
    color: Literal["rgb", "bgr"] = "rgb"
    checkpoint: CheckpointInfo = field(default_factory=CheckpointInfo)
    #: inference backend (``[backend] name``: ``auto`` unless the card pins one; ``POSESVC_MODEL__BACKEND``
    #: overrides it for every card)
    backend: str = "auto"
    #: ``topdown`` (crops of person boxes; needs a detector or client boxes) or ``bottomup`` (``[estimator]
    #: kind``: the network finds the persons in the whole image, e.g. DEKR)
    kind: Literal["topdown", "bottomup"] = "topdown"
    #: the ``[bottomup]`` section (test settings of a bottom-up model: ``input_size``, ``nms_num``, ...)
    bottomup: dict[str, Any] = field(default_factory=dict)
    published_ap: float | None = None
    published_ap_note: str = ""
    #: every number of the card's ``[metrics]`` (``coco_val2017_ap``, ``mpii_val_pckh``, ``mpii_val_pckh_at_01``)
    published_metrics: dict[str, float] = field(default_factory=dict)
    source: str = ""

    # The schema's fields, read everywhere a card is at hand (one definition per schema).
    @property
    def joint_names(self) -> tuple[str, ...]:
        return self.keypoints.joints

    @property
    def flip_pairs(self) -> tuple[tuple[int, int], ...]:
        return self.keypoints.flip_pairs

    @property
    def oks_sigmas(self) -> tuple[float, ...]:
        return self.keypoints.sigmas

    @property
    def skeleton(self) -> tuple[tuple[int, int], ...]:
        return self.keypoints.skeleton

    @property
    def num_joints(self) -> int:
        return self.keypoints.num_joints

    @property
    def flip_permutation(self) -> tuple[int, ...]:
        """Channel permutation that swaps every flip pair (identity elsewhere)."""
        return self.keypoints.flip_permutation


def default_models_dir() -> Path:
    """``$POSESVC_MODELS_DIR``, else the ``models/`` folder next to the package (source checkout or image)."""
    env = os.environ.get("POSESVC_MODELS_DIR")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "models"


def list_cards(models_dir: Path | None = None) -> list[str]:
    d = models_dir or default_models_dir()
    return sorted(p.stem for p in d.glob("*.toml")) if d.is_dir() else []


def load_card(name_or_path: str | Path, models_dir: Path | None = None) -> ModelCard:
    """Load a card by name (``models/<name>.toml``) or from a path to a ``.toml`` file."""
    p = Path(name_or_path)
    if p.suffix != ".toml" or not p.exists():
        d = models_dir or default_models_dir()
        candidate = d / f"{name_or_path}.toml"
        if not candidate.exists():
            known = ", ".join(list_cards(d)) or "none"
            raise CardError(f"model card {name_or_path!r} not found (looked in {d}; known cards: {known})")
        p = candidate
    try:
        data = tomllib.loads(p.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise CardError(f"cannot read model card {p}: {exc}") from exc
    return parse_card(data, source=str(p))


def _req(section: dict[str, Any], key: str, where: str) -> Any:
    if key not in section:
        raise CardError(f"model card {where}: missing required key {key!r}")
    return section[key]


def parse_card(data: dict[str, Any], source: str = "<dict>") -> ModelCard:
    """Validate a parsed TOML document into a :class:`ModelCard`."""
    try:
        arch = dict(_req(data, "architecture", source))
        inp = dict(_req(data, "input", source))
        kind = str(dict(data.get("estimator", {})).get("kind", "topdown"))
        if kind not in ("topdown", "bottomup"):
            raise CardError(f"model card {source}: estimator.kind must be topdown or bottomup, got {kind!r}")
        if kind == "bottomup":  # no crops: heatmap size follows the input, no crop geometry, no top-down codec
            size = [int(v) for v in _req(inp, "size", source)]
            hm = dict(data.get("heatmap", {"size": [size[0] // 4, size[1] // 4]}))
            geo = dict(data.get("geometry", {"convention": "hrnet"}))
            codec = dict(data.get("codec", {"name": "dark"}))
        else:
            hm = dict(_req(data, "heatmap", source))
            geo = dict(_req(data, "geometry", source))
            codec = dict(_req(data, "codec", source))
        kp = dict(data.get("keypoints", {}))
        ckpt = dict(data.get("checkpoint", {}))
        backend = str(dict(data.get("backend", {})).get("name", "auto"))
        if backend not in BACKEND_CHOICES:
            raise CardError(f"model card {source}: backend.name must be one of {BACKEND_CHOICES}, got {backend!r}")
        metrics = dict(data.get("metrics", {}))
        convention = geo.get("convention", "darkpose")
        if convention not in CONVENTIONS:
            raise CardError(
                f"model card {source}: geometry.convention must be one of {CONVENTIONS}, got {convention!r}"
            )
        codec_name = codec.get("name", "dark")
        if codec_name not in codec_names():
            raise CardError(
                f"model card {source}: codec.name must be one of {codec_names()}, got {codec_name!r}"
            )
        input_size = tuple(int(v) for v in _req(inp, "size", source))
        heatmap_size = tuple(int(v) for v in _req(hm, "size", source))
        if len(input_size) != 2 or len(heatmap_size) != 2:
            raise CardError(f"model card {source}: input.size and heatmap.size are [width, height]")
        try:
            entry = get_net(str(_req(arch, "name", source)))
        except ValueError as exc:
            raise CardError(f"model card {source}: {exc}") from None
        if input_size[0] % entry.stride or input_size[1] % entry.stride:
            raise CardError(
                f"model card {source}: input size {input_size} must be multiples of {entry.stride} "
                f"for {entry.name}"
            )
        keypoints = parse_keypoints(kp, str(data.get("name", Path(source).stem)))
        out_joints = arch.get("num_joints")
        if out_joints is not None and int(out_joints) != keypoints.num_joints:
            raise CardError(
                f"model card {source}: the network outputs {out_joints} joints but keypoint schema "
                f"{keypoints.name!r} has {keypoints.num_joints}"
            )
        blur_kernel = int(codec.get("blur_kernel", 11))
        if blur_kernel < 1 or blur_kernel % 2 == 0:
            raise CardError(f"model card {source}: codec.blur_kernel must be a positive odd integer")
        params = {k: v for k, v in arch.items() if k != "name"}
        return ModelCard(
            name=str(data.get("name", Path(source).stem)),
            description=str(data.get("description", "")),
            architecture=str(_req(arch, "name", source)),
            arch_params=params,
            input_size=(input_size[0], input_size[1]),
            heatmap_size=(heatmap_size[0], heatmap_size[1]),
            keypoints=keypoints,
            convention=convention,
            flip_shift=bool(geo.get("flip_shift", convention == "hrnet")),
            codec=codec_name,
            blur_kernel=blur_kernel,
            sigma=float(codec.get("sigma", 2.0)),
            padding=float(geo.get("padding", 1.25)),
            color=_color(inp.get("color", "rgb"), source),
            mean=tuple(float(v) for v in inp.get("mean", (0.485, 0.456, 0.406))),  # type: ignore[arg-type]
            std=tuple(float(v) for v in inp.get("std", (0.229, 0.224, 0.225))),  # type: ignore[arg-type]
            checkpoint=CheckpointInfo(
                format=str(ckpt.get("format", "darkpose")),
                url=str(ckpt.get("url", "")),
                sha256=str(ckpt.get("sha256", "")).lower(),
                filename=str(ckpt.get("filename", "")),
                how_to_get=str(ckpt.get("how_to_get", "")),
            ),
            backend=backend,
            kind="bottomup" if kind == "bottomup" else "topdown",
            bottomup=dict(data.get("bottomup", {})),
            published_ap=float(metrics["coco_val2017_ap"]) if "coco_val2017_ap" in metrics else None,
            published_ap_note=str(metrics.get("note", "")),
            published_metrics={
                str(k): float(v) for k, v in metrics.items() if isinstance(v, int | float) and not isinstance(v, bool)
            },
            source=source,
        )
    except CardError:
        raise
    except (TypeError, ValueError, KeyError) as exc:
        raise CardError(f"model card {source} is malformed: {exc}") from exc


def _color(value: object, source: str) -> Literal["rgb", "bgr"]:
    if value == "rgb" or value == "bgr":
        return value
    raise CardError(f"model card {source}: input.color must be rgb or bgr, got {value!r}")


def parse_keypoints(kp: dict[str, Any], card_name: str) -> KeypointSchema:
    """The card's ``[keypoints]`` section: ``schema = "coco17" | "mpii16" | "crowdpose14"`` (default
    ``coco17``), or an inline schema (``names``, ``flip_pairs``, ``sigmas``, ``skeleton``) named after the card.
    An inline list equal to a registered schema's joints is that schema."""
    if "names" not in kp:
        return get_schema(str(kp.get("schema", COCO17.name)))
    if "schema" in kp:
        raise CardError(f"model card {card_name}: [keypoints] takes either schema or names, not both")
    names = tuple(str(n) for n in kp["names"])
    registered = schema_for_joints(names)
    raw_sigmas = kp.get("sigmas", kp.get("oks_sigmas"))
    pairs = tuple((int(a), int(b)) for a, b in kp.get("flip_pairs", ()))
    sigmas = None if raw_sigmas is None else tuple(float(v) for v in raw_sigmas)
    if registered is not None and (not pairs or pairs == registered.flip_pairs) and (
        sigmas is None or sigmas == registered.sigmas
    ):
        return registered
    if sigmas is None:
        raise CardError(f"model card {card_name}: an inline keypoint schema needs its OKS sigmas")
    return KeypointSchema(
        name=card_name,
        joints=names,
        flip_pairs=pairs,
        sigmas=sigmas,
        skeleton=tuple((int(a), int(b)) for a, b in kp.get("skeleton", ())),
    )
