"""Checkpoint reading and strict loading, never unpickling code.

* ``.pt`` / ``.pth`` files are read with ``torch.load(weights_only=True)``; ``.safetensors`` with safetensors.
* Wrappers ``{"state_dict": ...}``, ``{"model": ...}`` (with or without ``meta``) are unwrapped.
* Format filters (pure functions, timm-style) map foreign key layouts onto ours. Each network family
  registers its own (``nets/_registry.py``: HRNet's ``mmpose`` filter lives in ``nets/hrnet.py``);
  ``darkpose`` (the official layout, optional ``module.`` prefix) exists for every family.
* Loading is strict: only missing ``num_batches_tracked`` buffers are tolerated; anything else raises
  :class:`~service.errors.CheckpointError` listing the missing and unexpected keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from ..errors import CheckpointError
from ._registry import StateDict, StateDictFilter, entry_of, strip_module_prefix

_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "net")


def read_state_dict(path: str | Path) -> StateDict:
    """Read a checkpoint file into a flat ``{key: tensor}`` dict without executing pickled code."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint file not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return dict(load_file(str(path), device="cpu"))
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # weights_only refuses code objects; torch raises UnpicklingError et al.
        raise CheckpointError(f"cannot read {path} as a weights-only checkpoint: {exc}") from exc
    return unwrap(obj, source=str(path))


def unwrap(obj: object, source: str = "checkpoint") -> StateDict:
    """Find the tensor dict inside common wrappers (``state_dict``, ``model``; MMPose adds ``meta``)."""
    if isinstance(obj, Mapping):
        for key in _WRAPPER_KEYS:
            inner = obj.get(key)
            if isinstance(inner, Mapping) and inner and all(isinstance(v, Tensor) for v in inner.values()):
                return {str(k): v for k, v in inner.items()}
        tensors = {str(k): v for k, v in obj.items() if isinstance(v, Tensor)}
        if tensors:
            return tensors
    raise CheckpointError(f"{source} holds no tensor dict (looked for keys {', '.join(_WRAPPER_KEYS)})")


def detect_format(sd: Mapping[str, Tensor]) -> str:
    """Guess the checkpoint layout from sentinel keys."""
    if any(k.startswith(("backbone.", "keypoint_head.", "head.")) for k in sd):
        return "mmpose"
    return "darkpose"


def filters_for(model: nn.Module) -> Mapping[str, StateDictFilter]:
    """The checkpoint filters of ``model``'s family (only ``darkpose`` for a module built elsewhere)."""
    entry = entry_of(model)
    return entry.filters if entry is not None else {"darkpose": strip_module_prefix}


def load_into(model: nn.Module, sd: Mapping[str, Tensor], fmt: str = "auto") -> None:
    """Load ``sd`` into ``model`` strictly after applying its family's ``fmt`` filter (``auto`` detects it).

    Raises:
        CheckpointError: an unknown format for this family, or the lists of missing and unexpected keys,
            or of shape mismatches.
    """
    if fmt == "auto":
        fmt = detect_format(sd)
    filters = filters_for(model)
    try:
        filt = filters[fmt]
    except KeyError:
        family = getattr(entry_of(model), "name", type(model).__name__)
        raise CheckpointError(
            f"checkpoint format {fmt!r} is not known for {family}; known: {', '.join(sorted(filters))}"
        ) from None
    mapped = filt(dict(sd))
    target = model.state_dict()
    missing = [k for k in target if k not in mapped and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in mapped if k not in target]
    shapes = [
        f"{k}: checkpoint {tuple(mapped[k].shape)} vs model {tuple(target[k].shape)}"
        for k in target
        if k in mapped and tuple(mapped[k].shape) != tuple(target[k].shape)
    ]
    if missing or unexpected or shapes:
        parts = [f"checkpoint ({fmt} format) does not match the architecture:"]
        if missing:
            parts.append(f"{len(missing)} missing key(s): {_abbrev(missing)}")
        if unexpected:
            parts.append(f"{len(unexpected)} unexpected key(s): {_abbrev(unexpected)}")
        if shapes:
            parts.append(f"{len(shapes)} shape mismatch(es): {_abbrev(shapes)}")
        raise CheckpointError("\n  ".join(parts))
    # num_batches_tracked may be absent: fill from the model so that strict loading passes.
    full = {k: mapped.get(k, target[k]) for k in target}
    model.load_state_dict(full, strict=True)


def load_checkpoint_file(model: nn.Module, path: str | Path, fmt: str = "auto") -> None:
    """Read ``path`` (weights-only) and load it strictly into ``model``."""
    load_into(model, read_state_dict(path), fmt)


def _abbrev(items: list[str], limit: int = 12) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f", … (+{len(items) - limit} more)" if len(items) > limit else "")
