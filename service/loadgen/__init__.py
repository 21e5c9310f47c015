"""Load generation and micro-benchmarks (``posesvc bench``)."""

from __future__ import annotations

from .core import (
    LoadConfig,
    PhaseResult,
    RemoteTargetRefused,
    Sample,
    Target,
    load_samples,
    parse_target,
    run_load,
)

__all__ = [
    "LoadConfig",
    "PhaseResult",
    "RemoteTargetRefused",
    "Sample",
    "Target",
    "load_samples",
    "parse_target",
    "run_load",
]
