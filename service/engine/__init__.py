"""The serving engine: bounded queue → dynamic batcher → one worker thread per device.

Transports build a :class:`~service.schemas.PoseRequest` and ``await engine.submit(request)``; they never
see a batch, a tensor or a model. Imports go one way: transport → engine → pipeline.
"""

from .engine import EngineConfig, ModelInfo, PipelineFactory, PoseEngine
from .stats import EngineHooks, EngineStats
from .worker import WorkerCrash

__all__ = [
    "EngineConfig",
    "EngineHooks",
    "EngineStats",
    "ModelInfo",
    "PipelineFactory",
    "PoseEngine",
    "WorkerCrash",
]
