"""Estimator kinds: what the pipeline, the engine, streams and batch jobs see of a pose model."""

from .base import Counters, Estimator, WarmupInput

__all__ = ["Counters", "Estimator", "WarmupInput"]
