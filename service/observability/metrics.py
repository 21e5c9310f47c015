"""Prometheus metrics of posesvc.

Every metric lives on a dedicated :class:`prometheus_client.CollectorRegistry` owned by a
:class:`Metrics` instance (never on the process-global default registry), so tests and several
app instances in one process do not collide. Create one ``Metrics`` per process in the app
lifespan, hand it to the transports and the engine, and serve :meth:`Metrics.render` at
``GET /metrics``.

Conventions (https://prometheus.io/docs/practices/naming/):

- prefix ``posesvc_``; base units only: durations in **seconds**, memory in **bytes**;
- counters are exported with the ``_total`` suffix (prometheus-client appends it, so the
  constructors below are given the name without it), histograms as ``_bucket``/``_sum``/``_count``;
- bounded label sets only: the allowed values of every label are listed in :data:`METRIC_SPECS`
  (never request ids, stream ids or client addresses as labels).

:data:`METRIC_SPECS` is the single source of truth: the metric objects are built from it and
``docs/METRICS.md`` is generated from it (``python -m service.observability``).

This module imports nothing else from the ``service`` package.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import choose_encoder

MetricType = Literal["counter", "gauge", "histogram"]

# ---------------------------------------------------------------------------------------------
# Bounded label values.
# ---------------------------------------------------------------------------------------------

TRANSPORTS: Final = ("rest", "grpc")
#: RPC / route names; ``method`` is bounded to this set by the transports.
METHODS: Final = ("estimate", "estimate_batch", "render", "stream_frame", "list_models")
#: Pipeline stages in execution order.
STAGES: Final = (
    "decode_image",
    "detect",
    "crop",
    "pose_forward",
    "flip_merge",
    "keypoint_decode",
    "serialize",
)
#: ``model`` label: each served pose model's card name, and ``detector`` (documentation values)
MODELS: Final = ("<card name>", "detector")
BATCH_UNITS: Final = ("images", "crops")
REJECT_REASONS: Final = (
    "queue_full",
    "deadline_exceeded",
    "invalid_image",
    "invalid_input",
    "payload_too_large",
    "image_too_large",
    "unsupported_media_type",
    "unauthenticated",
    "stream_limit",
    "not_ready",
)
PERSON_SOURCES: Final = ("detector", "client", "tracker")
STREAM_OUTCOMES: Final = ("processed", "dropped", "detection_skipped", "error")

# ---------------------------------------------------------------------------------------------
# Buckets (upper bounds; prometheus-client adds +Inf).
# ---------------------------------------------------------------------------------------------

#: End-to-end request latency in seconds: 1 ms … 30 s.
LATENCY_BUCKETS_S: Final = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0, 30.0,
)  # fmt: skip
#: One pipeline stage for one batch, in seconds: 0.1 ms … 10 s.
STAGE_BUCKETS_S: Final = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
)  # fmt: skip
#: Time an item waits in a batching queue before its batch starts, in seconds: 0.1 ms … 10 s.
QUEUE_WAIT_BUCKETS_S: Final = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip
#: Items per executed batch (images or crops).
BATCH_SIZE_BUCKETS: Final = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0)
#: Persons per image; the 0 bucket counts images without anybody.
PERSONS_BUCKETS: Final = (0.0, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0)
#: Keypoint confidence (heatmap maximum, dimensionless, nominally 0 … 1): 0.1 … 1.0, step 0.1.
SCORE_BUCKETS: Final = tuple(round(0.1 * i, 1) for i in range(1, 11))


@dataclass(frozen=True)
class MetricSpec:
    """Description of one exported metric family.

    Attributes:
        name: the exported family name as it appears in ``/metrics`` and in PromQL; counters
            include their ``_total`` suffix.
        type: ``counter``, ``gauge`` or ``histogram``.
        labels: label names, in order.
        help: the HELP text (also the "meaning" column of ``docs/METRICS.md``).
        label_values: the allowed values of each bounded label (documentation, and the label
            combinations pre-initialised at 0 so that dashboards show zero rather than no data).
            Labels absent here are free-form but still low-cardinality (e.g. ``code``, ``device``).
        buckets: histogram upper bounds, in the metric's unit.
    """

    name: str
    type: MetricType
    labels: tuple[str, ...]
    help: str
    label_values: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    buckets: tuple[float, ...] = ()

    @property
    def constructor_name(self) -> str:
        """The name given to the prometheus-client constructor (counters without ``_total``)."""
        if self.type == "counter":
            return self.name.removesuffix("_total")
        return self.name

    @property
    def sample_names(self) -> tuple[str, ...]:
        """Every sample name this family exports (what PromQL can reference)."""
        if self.type == "counter":
            base = self.constructor_name
            return (f"{base}_total", f"{base}_created")
        if self.type == "histogram":
            return tuple(f"{self.name}{s}" for s in ("_bucket", "_sum", "_count", "_created"))
        return (self.name,)


REQUESTS_TOTAL: Final = MetricSpec(
    "posesvc_requests_total",
    "counter",
    ("transport", "method", "code"),
    "Finished requests by transport, method and result code (HTTP status such as 200, or gRPC "
    "status name such as OK, RESOURCE_EXHAUSTED).",
    {"transport": TRANSPORTS, "method": METHODS},
)
REQUEST_DURATION: Final = MetricSpec(
    "posesvc_request_duration_seconds",
    "histogram",
    ("transport", "method"),
    "End-to-end request latency in seconds, from the transport receiving the request to the "
    "response being handed back (one streamed frame counts as one request).",
    {"transport": TRANSPORTS, "method": METHODS},
    LATENCY_BUCKETS_S,
)
STAGE_DURATION: Final = MetricSpec(
    "posesvc_stage_duration_seconds",
    "histogram",
    ("model", "stage"),
    "Wall time in seconds of one pipeline stage for one batch of one model (decode_image and serialize: per "
    "request).",
    {"model": MODELS[:1], "stage": STAGES},
    STAGE_BUCKETS_S,
)
BATCH_QUEUE_WAIT: Final = MetricSpec(
    "posesvc_batch_queue_wait_seconds",
    "histogram",
    ("model",),
    "Seconds an item waited in the batching queue of a model before its batch started (the "
    "autoscaling signal).",
    {"model": MODELS},
    QUEUE_WAIT_BUCKETS_S,
)
BATCH_SIZE: Final = MetricSpec(
    "posesvc_batch_size",
    "histogram",
    ("model", "unit"),
    "Items per executed batch: images for the detector, person crops for the pose network "
    "(before flip-test doubling).",
    {"model": MODELS, "unit": BATCH_UNITS},
    BATCH_SIZE_BUCKETS,
)
BATCH_QUEUE_ITEMS: Final = MetricSpec(
    "posesvc_batch_queue_items",
    "gauge",
    ("model",),
    "Items currently waiting in the batching queue of a model.",
    {"model": MODELS},
)
REQUESTS_REJECTED: Final = MetricSpec(
    "posesvc_requests_rejected_total",
    "counter",
    ("reason",),
    "Requests (or stream frames) refused before or instead of inference, by reason.",
    {"reason": REJECT_REASONS},
)
PERSONS_PER_IMAGE: Final = MetricSpec(
    "posesvc_persons_per_image",
    "histogram",
    ("source",),
    "Persons estimated per image, by where the boxes came from (detector, client-supplied "
    "boxes, or the stream tracker).",
    {"source": PERSON_SOURCES},
    PERSONS_BUCKETS,
)
KEYPOINT_SCORE: Final = MetricSpec(
    "posesvc_keypoint_score",
    "histogram",
    ("model", "joint"),
    "Confidence (0..1) of every returned keypoint, per model and per joint of its keypoint schema (the "
    "17 COCO joint names for COCO cards): a model-quality and input-drift signal.",
    {"model": MODELS[:1]},
    SCORE_BUCKETS,
)
STREAM_FRAMES: Final = MetricSpec(
    "posesvc_stream_frames_total",
    "counter",
    ("outcome",),
    "Frames received on streaming RPCs by outcome: processed, dropped (latest-frame "
    "back-pressure policy), detection_skipped (tracker boxes reused), error.",
    {"outcome": STREAM_OUTCOMES},
)
ACTIVE_STREAMS: Final = MetricSpec(
    "posesvc_active_streams",
    "gauge",
    (),
    "Streaming RPCs currently open.",
)
BUILD_INFO: Final = MetricSpec(
    "posesvc_build_info",
    "gauge",
    ("version", "pose_model", "detector", "device", "precision", "flip_test", "decoder", "backend"),
    "Constant 1; the labels describe the running build and model configuration.",
    {"flip_test": ("true", "false")},
)
MODEL_READY: Final = MetricSpec(
    "posesvc_model_ready",
    "gauge",
    ("model",),
    "1 once the model is loaded and warmed up, else 0.",
    {"model": MODELS},
)
MODEL_INFO: Final = MetricSpec(
    "posesvc_model_info",
    "gauge",
    ("model", "mode", "backend", "keypoint_schema"),
    "Constant 1 per served model; mode is topdown (person boxes from the client or the detector) or bottomup "
    "(the network finds the persons, e.g. DEKR); backend is the inference backend serving it.",
    {"mode": ("topdown", "bottomup")},
)
WORKER_RESTARTS: Final = MetricSpec(
    "posesvc_worker_restarts_total",
    "counter",
    (),
    "Times an inference worker was restarted after a failure.",
)
GPU_MEMORY_USED: Final = MetricSpec(
    "posesvc_gpu_memory_used_bytes",
    "gauge",
    ("device",),
    "Bytes of GPU memory allocated by PyTorch tensors on a CUDA device (torch.cuda."
    "memory_allocated; absent on CPU).",
)

#: Every metric the service exports, in documentation order.
METRIC_SPECS: Final[tuple[MetricSpec, ...]] = (
    REQUESTS_TOTAL,
    REQUEST_DURATION,
    STAGE_DURATION,
    BATCH_QUEUE_WAIT,
    BATCH_SIZE,
    BATCH_QUEUE_ITEMS,
    REQUESTS_REJECTED,
    PERSONS_PER_IMAGE,
    KEYPOINT_SCORE,
    STREAM_FRAMES,
    ACTIVE_STREAMS,
    BUILD_INFO,
    MODEL_READY,
    MODEL_INFO,
    WORKER_RESTARTS,
    GPU_MEMORY_USED,
)


class Metrics:
    """All Prometheus metrics of one posesvc process, on a private registry.

    Attributes are the prometheus-client metric objects; use them directly, e.g.
    ``m.requests_total.labels(transport="rest", method="estimate", code="200").inc()`` or
    ``with m.stage_duration_seconds.labels(model="card", stage="detect").time(): ...`` (seconds).
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests_total = _counter(REQUESTS_TOTAL, r)
        self.request_duration_seconds = _histogram(REQUEST_DURATION, r)
        self.stage_duration_seconds = _histogram(STAGE_DURATION, r)
        self.batch_queue_wait_seconds = _histogram(BATCH_QUEUE_WAIT, r)
        self.batch_size = _histogram(BATCH_SIZE, r)
        self.batch_queue_items = _gauge(BATCH_QUEUE_ITEMS, r)
        self.requests_rejected_total = _counter(REQUESTS_REJECTED, r)
        self.persons_per_image = _histogram(PERSONS_PER_IMAGE, r)
        self.keypoint_score = _histogram(KEYPOINT_SCORE, r)
        self.stream_frames_total = _counter(STREAM_FRAMES, r)
        self.active_streams = _gauge(ACTIVE_STREAMS, r)
        self.build_info = _gauge(BUILD_INFO, r)
        self.model_ready = _gauge(MODEL_READY, r)
        self.model_info = _gauge(MODEL_INFO, r)
        self.worker_restarts_total = _counter(WORKER_RESTARTS, r)
        self.gpu_memory_used_bytes = _gauge(GPU_MEMORY_USED, r)

        # Pre-initialise single-label series so rates and "model not ready" show 0, not "no data".
        for reason in REJECT_REASONS:
            self.requests_rejected_total.labels(reason=reason)
        for outcome in STREAM_OUTCOMES:
            self.stream_frames_total.labels(outcome=outcome)

    def register_models(self, names: Iterable[str]) -> None:
        """Pre-initialise the per-model gauges at 0 for the served models (their card names, then
        ``detector``), so dashboards show 0 rather than no data."""
        for model in names:
            self.model_ready.labels(model=model).set(0)
            self.batch_queue_items.labels(model=model).set(0)

    def set_model_info(self, model: str, *, mode: str, backend: str, keypoint_schema: str) -> None:
        """Publish ``posesvc_model_info{model, mode, backend, keypoint_schema} 1`` for one served model."""
        self.model_info.labels(model=model, mode=mode, backend=backend, keypoint_schema=keypoint_schema).set(1)

    def set_build_info(
        self,
        *,
        version: str,
        pose_model: str,
        detector: str,
        device: str,
        precision: str,
        flip_test: bool,
        decoder: str,
        backend: str = "torch",
    ) -> None:
        """Publish ``posesvc_build_info{...} 1``, replacing any earlier label set."""
        self.build_info.clear()
        self.build_info.labels(
            version=version,
            pose_model=pose_model,
            detector=detector,
            device=device,
            precision=precision,
            flip_test="true" if flip_test else "false",
            decoder=decoder,
            backend=backend,
        ).set(1)

    def observe_keypoint_scores(
        self, scores: Iterable[Sequence[float]], joints: Sequence[str], model: str
    ) -> None:
        """Record the confidences of returned persons.

        Args:
            scores: one row per person with the K joint confidences (0..1); shape ``(N, K)``.
            joints: the K joint names (the model's keypoint schema: a bounded label set per served model).
            model: the model's card name.
                A row of another length is skipped (an observer never fails the request it observes).
        """
        children = [self.keypoint_score.labels(model=model, joint=j) for j in joints]
        for row in scores:
            if len(row) != len(children):
                continue
            for child, score in zip(children, row, strict=True):
                child.observe(float(score))

    def update_gpu_memory(self) -> None:
        """Set ``posesvc_gpu_memory_used_bytes`` (bytes) for every initialised CUDA device.

        Imports torch lazily and does nothing without torch, without CUDA, or before CUDA has
        been initialised by the worker (so a CPU-only process never creates a CUDA context).
        """
        try:
            import torch
        except ImportError:
            return
        if not torch.cuda.is_available() or not torch.cuda.is_initialized():  # type: ignore[no-untyped-call]
            return
        for index in range(torch.cuda.device_count()):
            used = torch.cuda.memory_allocated(index)
            self.gpu_memory_used_bytes.labels(device=f"cuda:{index}").set(float(used))

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """Exposition text of the registry and its content type.

        Args:
            accept: the request's ``Accept`` header; OpenMetrics is returned when it asks for
                ``application/openmetrics-text``, else the Prometheus text format 0.0.4.
        """
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type


def _check(spec: MetricSpec, expected: MetricType) -> None:
    if spec.type != expected or (expected == "histogram") != bool(spec.buckets):
        raise ValueError(f"{spec.name}: spec of type {spec.type!r} cannot build a {expected}")


def _counter(spec: MetricSpec, registry: CollectorRegistry) -> Counter:
    _check(spec, "counter")
    return Counter(spec.constructor_name, spec.help, spec.labels, registry=registry)


def _gauge(spec: MetricSpec, registry: CollectorRegistry) -> Gauge:
    _check(spec, "gauge")
    return Gauge(spec.constructor_name, spec.help, spec.labels, registry=registry)


def _histogram(spec: MetricSpec, registry: CollectorRegistry) -> Histogram:
    _check(spec, "histogram")
    return Histogram(spec.constructor_name, spec.help, spec.labels, registry=registry, buckets=spec.buckets)


# ---------------------------------------------------------------------------------------------
# docs/METRICS.md
# ---------------------------------------------------------------------------------------------

_DOC_HEADER = """\
# posesvc metrics

<!-- Generated from service/observability/metrics.py (METRIC_SPECS); do not edit by hand.
     Regenerate with: python -m service.observability > docs/METRICS.md
     tests/deploy/test_metrics.py fails when this file is out of sync. -->

Served at `GET /metrics` on the HTTP port (8000). Durations are in seconds and memory in bytes.
Counters are exported with the `_total` suffix; histograms as `<name>_bucket`, `<name>_sum` and
`<name>_count`. prometheus-client also exports a `_created` timestamp for counters and histograms.
"""


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def _labels_cell(spec: MetricSpec) -> str:
    if not spec.labels:
        return "—"
    parts = []
    for label in spec.labels:
        values = spec.label_values.get(label)
        parts.append(f"`{label}`" + (f" ({', '.join(values)})" if values else ""))
    return _md("; ".join(parts))


def _meaning_cell(spec: MetricSpec) -> str:
    text = spec.help
    if spec.buckets:
        text += " Buckets: " + ", ".join(f"{b:g}" for b in spec.buckets) + "."
    return _md(text)


def render_metrics_doc() -> str:
    """The full text of ``docs/METRICS.md``, generated from :data:`METRIC_SPECS`."""
    lines = [_DOC_HEADER, "| Name | Type | Labels | Meaning |", "|---|---|---|---|"]
    for spec in METRIC_SPECS:
        lines.append(f"| `{spec.name}` | {spec.type} | {_labels_cell(spec)} | {_meaning_cell(spec)} |")
    return "\n".join(lines) + "\n"
