"""Engine → Prometheus: :class:`~service.engine.stats.EngineHooks` that feed
:class:`~service.observability.metrics.Metrics` (thread-safe; called on worker threads and the loop)."""

from __future__ import annotations

from collections.abc import Sequence

from ..observability.metrics import REJECT_REASONS, Metrics
from ..schemas import PoseResult
from .stats import EngineHooks

#: Pipeline timing keys → ``stage`` label values (``queue_wait`` is its own histogram).
STAGES = ("detect", "crop", "pose_forward", "flip_merge", "keypoint_decode")


def metrics_hooks(m: Metrics, joints: Sequence[str], model: str) -> EngineHooks:
    """Hooks feeding ``m`` for one served model: ``model`` (its card name) is the ``model`` label of its batch
    metrics, ``joints`` its joint names (``posesvc_keypoint_score`` labels)."""
    joint_names = tuple(joints)

    def on_batch(images: int, crops: int, waits: Sequence[float], _compute_s: float) -> None:
        m.batch_size.labels(model=model, unit="images").observe(images)
        if crops:
            m.batch_size.labels(model=model, unit="crops").observe(crops)
        hist = m.batch_queue_wait_seconds.labels(model=model)
        for w in waits:
            hist.observe(w)

    def on_results(results: Sequence[PoseResult]) -> None:
        if not results:
            return
        timings = results[0].timings  # the batch's stage durations (shared by its images)
        for stage in STAGES:
            if stage in timings:
                m.stage_duration_seconds.labels(model=model, stage=stage).observe(timings[stage])
        if any(r.boxes_source == "detector" for r in results):
            m.batch_size.labels(model="detector", unit="images").observe(
                sum(r.boxes_source == "detector" for r in results)
            )
        for r in results:
            m.persons_per_image.labels(
                source=r.boxes_source if r.boxes_source != "none" else "client"
            ).observe(len(r.persons))
            if r.persons:
                m.observe_keypoint_scores([p.keypoints[:, 2].tolist() for p in r.persons], joint_names, model)

    def on_reject(reason: str) -> None:
        label = {
            "overloaded": "queue_full",
            "undecodable_image": "invalid_image",
            "invalid_boxes": "invalid_input",
        }.get(reason, reason)
        if label in REJECT_REASONS:  # bounded label set ("cancelled" callers are not rejections)
            m.requests_rejected_total.labels(reason=label).inc()

    def on_restart(_worker: str) -> None:
        m.worker_restarts_total.inc()

    def on_decode(seconds: float) -> None:
        m.stage_duration_seconds.labels(model=model, stage="decode_image").observe(seconds)

    return EngineHooks(
        on_batch=on_batch,
        on_results=on_results,
        on_reject=on_reject,
        on_restart=on_restart,
        on_decode=on_decode,
    )
