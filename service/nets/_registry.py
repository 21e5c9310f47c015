"""Architecture registry: a new backbone is one module with ``@register_net`` plus one model card."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

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


def build_net(name: str, params: Mapping[str, Any]) -> nn.Module:
    """Build an (untrained) network of architecture ``name`` with the card's parameters."""
    try:
        factory = _NETS[name]
    except KeyError:
        raise ValueError(f"unknown architecture {name!r}; registered: {', '.join(list_nets())}") from None
    return factory(**dict(params))
