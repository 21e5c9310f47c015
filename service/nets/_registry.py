"""Architecture registry: a new backbone is one module with ``@register_net`` plus one model card."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch import nn

NetFactory = Callable[..., nn.Module]
_NETS: dict[str, NetFactory] = {}


def register_net(name: str) -> Callable[[NetFactory], NetFactory]:
    """Register ``factory(**params) -> nn.Module`` under ``name`` (the card's ``architecture.name``)."""

    def deco(factory: NetFactory) -> NetFactory:
        if name in _NETS:
            raise ValueError(f"architecture {name!r} is already registered")
        _NETS[name] = factory
        return factory

    return deco


def list_nets() -> list[str]:
    return sorted(_NETS)


def init_seed(key: str) -> int:
    """The seed of the random initialisation for ``key`` (a card name): the same in every process."""
    return int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:4], "big")


def build_net(name: str, params: Mapping[str, Any], *, seed_key: str | None = None) -> nn.Module:
    """Build an (untrained) network of architecture ``name`` with the card's parameters.

    The random initialisation is drawn from a private generator seeded by ``seed_key`` (default: ``name``
    and its parameters), so untrained smoke-run weights are identical in every process, worker and run;
    the global torch RNG is left as it was.
    """
    try:
        factory = _NETS[name]
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}; registered: {', '.join(list_nets())}") from None
    key = seed_key if seed_key is not None else f"{name}:{sorted(dict(params).items())!r}"
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed(key))
        return factory(**dict(params))
