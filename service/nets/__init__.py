"""Network families (one module each, registered with :func:`register_net`) and checkpoint loading."""

from . import dekr as _dekr  # noqa: F401  (registers "dekr")
from . import hourglass as _hourglass  # noqa: F401  (registers "hourglass")
from . import hrnet as _hrnet  # noqa: F401  (registers "hrnet")
from . import pose_resnet as _pose_resnet  # noqa: F401  (registers "pose_resnet")
from ._registry import NetEntry, as_tuple, build_net, get_net, init_seed, list_nets, register_net
from .checkpoint import load_checkpoint_file, load_into

__all__ = [
    "NetEntry",
    "as_tuple",
    "build_net",
    "get_net",
    "init_seed",
    "list_nets",
    "load_checkpoint_file",
    "load_into",
    "register_net",
]
