"""Network registry: a family is one module that registers a :class:`NetEntry`, plus one model card.

An entry owns what differs per family: the factory (card ``[architecture]`` parameters → ``nn.Module``), the
checkpoint filters that map published key layouts onto the module's (``darkpose``, ``mmpose``, ...), the
stride the input size must be a multiple of, and how the module's raw output maps to a tuple of tensors
(heatmaps first; Hourglass returns one map per stack and keeps the last).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

NetFactory = Callable[..., nn.Module]
StateDict = dict[str, Tensor]
StateDictFilter = Callable[[StateDict], StateDict]
OutputAdapter = Callable[[Any], tuple[Tensor, ...]]

#: attribute that :func:`build_net` sets on every module it builds (its family name)
FAMILY_ATTR = "posesvc_family"


def as_tuple(out: Any) -> tuple[Tensor, ...]:
    """The default output adapter: a tensor → ``(tensor,)``; a list or tuple of tensors → a tuple."""
    if isinstance(out, Tensor):
        return (out,)
    return tuple(out)


def strip_module_prefix(sd: StateDict) -> StateDict:
    """The official layouts (HRNet / DarkPose): strip a DataParallel ``module.`` prefix when every key has it."""
    if sd and all(k.startswith("module.") for k in sd):
        return {k[len("module.") :]: v for k, v in sd.items()}
    return dict(sd)


@dataclass(frozen=True)
class NetEntry:
    """One registered network family.

    Attributes:
        name: the card's ``[architecture] name``.
        factory: ``factory(**params) -> nn.Module`` (``params``: the rest of the card's ``[architecture]``).
        filters: checkpoint format → key-layout filter for this family (``darkpose`` is always present).
        stride: the input width and height must be multiples of this (px).
        outputs: raw module output → tuple of tensors, heatmaps ``(B, K, H_hm, W_hm)`` first.
    """

    name: str
    factory: NetFactory
    filters: Mapping[str, StateDictFilter] = field(default_factory=dict)
    stride: int = 1
    outputs: OutputAdapter = as_tuple


_NETS: dict[str, NetEntry] = {}


def register_net(
    name: str,
    *,
    filters: Mapping[str, StateDictFilter] | None = None,
    stride: int = 1,
    outputs: OutputAdapter = as_tuple,
) -> Callable[[NetFactory], NetFactory]:
    """Register ``factory`` under ``name``, with its checkpoint ``filters``, input ``stride`` and output adapter."""

    def deco(factory: NetFactory) -> NetFactory:
        if name in _NETS:
            raise ValueError(f"architecture {name!r} is already registered")
        if stride < 1:
            raise ValueError(f"architecture {name!r}: stride must be >= 1")
        _NETS[name] = NetEntry(name, factory, {"darkpose": strip_module_prefix, **(filters or {})}, stride, outputs)
        return factory

    return deco


def list_nets() -> list[str]:
    return sorted(_NETS)


def get_net(name: str) -> NetEntry:
    try:
        return _NETS[name]
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}; registered: {', '.join(list_nets())}") from None


def entry_of(model: nn.Module) -> NetEntry | None:
    """The entry a module built by :func:`build_net` came from."""
    name = getattr(model, FAMILY_ATTR, None)
    return _NETS.get(name) if isinstance(name, str) else None


def init_seed(key: str) -> int:
    """The seed of the random initialisation for ``key`` (a card name): the same in every process."""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:4], "big")


def build_net(name: str, params: Mapping[str, Any], *, seed_key: str | None = None) -> nn.Module:
    """Build an (untrained) network of architecture ``name`` with the card's parameters.

    The random initialisation is drawn from a private generator seeded by ``seed_key`` (default: ``name``
    and its parameters), so untrained smoke-run weights are identical in every process, worker and run;
    the global torch RNG is left as it was.
    """
    entry = get_net(name)
    key = seed_key if seed_key is not None else f"{name}:{sorted(dict(params).items())!r}"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed(key))
        net = entry.factory(**dict(params))
    setattr(net, FAMILY_ATTR, name)
    return net
