"""Measured engine faults (figures for docs/RELIABILITY.md): a pose forward that raises fails only its batch
and the engine stays ready; a worker thread that dies fails its in-flight batch with a clear error, readiness
drops, and the replacement is ready again after a measured restart time."""

from __future__ import annotations

import time
from typing import Any

from service.engine import PoseEngine, WorkerCrash
from service.errors import EngineError
from service.schemas import PoseRequest
from tests.reliability.conftest import write_summary

from .conftest import Factory, Sample, config, run_engine

CRASHES = 3


def test_forward_error_and_worker_death_restart_times(factory: Factory, coco_samples: list[Sample]) -> None:
    faults: list[str] = []

    def hook(_index: int, _batch: Any) -> None:
        if faults:
            kind = faults.pop(0)
            if kind == "crash":
                raise WorkerCrash("simulated worker death")
            raise RuntimeError("simulated forward failure")

    engine = PoseEngine(config(), factory, ["cpu"], fault_hook=hook)
    s = coco_samples[0]
    figures: dict[str, Any] = {}

    async def body(e: PoseEngine) -> None:
        # a forward that raises: that request fails (EngineError), the engine stays ready, the next succeeds
        faults.append("raise")
        try:
            await e.submit(PoseRequest(s.data, s.boxes))
            raise AssertionError("the failing forward did not fail its request")
        except EngineError as exc:
            figures["forward_error"] = str(exc)[:120]
        assert e.ready
        assert len((await e.submit(PoseRequest(s.data, s.boxes))).persons) == 1
        # worker deaths: in-flight fails clearly, readiness drops, the replacement comes back
        restarts = []
        for _ in range(CRASHES):
            faults.append("crash")
            t0 = time.monotonic()
            try:
                await e.submit(PoseRequest(s.data, s.boxes))
                raise AssertionError("the crashing batch did not fail")
            except EngineError as exc:
                assert "crash" in str(exc)
            saw_not_ready = not e.ready
            await e.wait_ready(60)
            restarts.append(time.monotonic() - t0)
            figures.setdefault("not_ready_seen", []).append(saw_not_ready)
            assert len((await e.submit(PoseRequest(s.data, s.boxes))).persons) == 1
        figures["restart_s"] = [round(x, 3) for x in restarts]
        figures["restart_s_max"] = round(max(restarts), 3)

    run_engine(engine, body)
    figures["restarts"] = engine.stats().restarts
    assert figures["restarts"] == CRASHES
    write_summary("engine-faults", figures)
