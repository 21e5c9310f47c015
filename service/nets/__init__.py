"""Network architectures and checkpoint loading."""

from . import hrnet as _hrnet  # noqa: F401  (registers "hrnet")
from ._registry import build_net, init_seed, list_nets, register_net
from .checkpoint import load_checkpoint_file, load_into

__all__ = ["build_net", "init_seed", "list_nets", "load_checkpoint_file", "load_into", "register_net"]
