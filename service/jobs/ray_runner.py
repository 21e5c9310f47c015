"""``posesvc annotate --ray``: the same job on Ray Data.

The items still to do become a dataset of indices; ``map_batches`` runs them, ``batch_images`` at a time,
on a pool of actors that each hold one pipeline (built from the same settings as the embedded run: the same
card, weights, backend and, for smoke runs, the same card-seeded untrained weights) and return each item's
records; the driver writes them to the journal in item order (``preserve_order``), so the output is the
embedded run's. Actors that die are restarted and their batches retried (``max_restarts`` /
``max_task_retries``), so no item is lost. With no address a local Ray is started on this machine; with one,
the job joins that cluster (``ray://host:10001`` or ``auto``): the items' files must be readable from every
node at the same paths (shared storage).

Fault test hook: ``POSESVC_TEST_KILL_ACTOR=<item key>|<marker file>`` makes the actor that gets that item
first exit abruptly (and create the marker, so the retry succeeds).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..errors import InvalidInput
from ..settings import Settings
from .annotate import JobOptions, Summary, _advance, _bar
from .items import Item
from .journal import Journal

RETRIES = 3


class PipelineActor:
    """One pipeline per actor; ``__call__`` maps a batch of item indices to their records (JSON text)."""

    def __init__(self, settings_json: str, items: Sequence[Item], opts: JobOptions, needs_detector: bool) -> None:
        from ..engine.factory import build_detector, build_estimator, pose_weights
        from ..pipeline.card import load_card
        from ..pipeline.pipeline import PosePipeline

        s = Settings.model_validate_json(settings_json)
        card = load_card(s.model.card, s.model.models_dir)
        device = s.devices()[0]
        weights = pose_weights(s, card, allow_untrained=s.allow_untrained)
        est = build_estimator(s, card, device, weights, allow_untrained=s.allow_untrained)
        det = build_detector(s, device, fallback_untrained=s.allow_untrained) if needs_detector else None
        self.pipeline = PosePipeline(est, det)
        self.items = list(items)
        self.opts = opts

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        from .annotate import process_items

        chosen = [self.items[int(i)] for i in batch["index"]]
        kill = os.environ.get("POSESVC_TEST_KILL_ACTOR", "")
        if kill:
            key, marker = kill.split("|", 1)
            if any(it.key == key for it in chosen) and not Path(marker).exists():
                Path(marker).write_text("killed once")
                os._exit(1)
        records = process_items(self.pipeline, chosen, self.opts)
        return {"index": list(batch["index"]), "records": [json.dumps(r) for r in records]}


def run_on_ray(
    settings: Settings,
    items: Sequence[Item],
    journal: Journal,
    opts: JobOptions,
    *,
    address: str = "local",
    actors: int = 1,
    gpus_per_actor: float = 0.0,
    progress: bool = True,
) -> Summary:
    """Run the items not yet done on Ray; records are appended to ``journal`` in item order."""
    try:
        import ray
    except ImportError:
        raise InvalidInput("--ray needs Ray: pip install 'ray[data]'") from None
    if actors < 1:
        raise InvalidInput("--actors must be at least 1")
    todo = [it for it in items if it.key not in journal.done]
    summary = Summary(items=len(items), skipped=len(items) - len(todo))
    if not todo:
        return summary
    started_here = not ray.is_initialized()
    if started_here:
        env = {"env_vars": {k: v for k, v in os.environ.items() if k.startswith(("POSESVC_", "OMP_", "OPENBLAS_"))}}
        if address == "local":
            # a single-node Ray on loopback only: nothing of it listens on the machine's network interfaces
            ray.init(include_dashboard=False, log_to_driver=False, runtime_env=env, configure_logging=False,
                     _node_ip_address="127.0.0.1")  # fmt: skip
        else:
            ray.init(address=address, runtime_env=env, log_to_driver=False)
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True
        ctx.enable_progress_bars = False
        needs_detector = any(it.boxes is None for it in todo)
        # one intra-op thread budget per actor: the actors share the machine
        cpus = max(1, int(ray.available_resources().get("CPU", 1)) // actors)  # type: ignore[no-untyped-call]
        s = settings.model_copy(update={"cpu_threads": settings.cpu_threads or cpus})
        ds = ray.data.from_items([{"index": i} for i in range(len(todo))], override_num_blocks=max(1, len(todo) // opts.batch_images))
        out = ds.map_batches(
            PipelineActor,
            fn_constructor_args=(s.model_dump_json(), todo, opts, needs_detector),
            batch_size=opts.batch_images,
            batch_format="numpy",
            concurrency=actors,
            num_cpus=cpus,
            num_gpus=gpus_per_actor,
            max_restarts=RETRIES,
            max_task_retries=RETRIES,
        )
        t0 = time.perf_counter()
        bar = _bar(len(todo), progress)
        try:
            for row in out.iter_rows():
                records = json.loads(row["records"])
                for r in records:
                    journal.write(r)
                summary.add(records)
                _advance(bar, 1, summary, t0)
        finally:
            if bar is not None:
                bar.close()
        summary.seconds = time.perf_counter() - t0
    finally:
        if started_here:
            ray.shutdown()
    return summary
