"""Unit tests of service.observability.metrics and the docs/METRICS.md table generated from it."""

from __future__ import annotations

import ast
import math
import sys
import types
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from service.observability import metrics as metrics_mod
from service.observability.metrics import METRIC_SPECS, Metrics, render_metrics_doc
from service.zoo.keypoints import COCO17, MPII16

# The contract, written out independently of METRIC_SPECS: exported name -> (type, label names).
REQUIRED: dict[str, tuple[str, tuple[str, ...]]] = {
    "posesvc_requests_total": ("counter", ("transport", "method", "code")),
    "posesvc_request_duration_seconds": ("histogram", ("transport", "method")),
    "posesvc_stage_duration_seconds": ("histogram", ("model", "stage")),
    "posesvc_batch_queue_wait_seconds": ("histogram", ("model",)),
    "posesvc_batch_size": ("histogram", ("model", "unit")),
    "posesvc_batch_queue_items": ("gauge", ("model",)),
    "posesvc_requests_rejected_total": ("counter", ("reason",)),
    "posesvc_persons_per_image": ("histogram", ("source",)),
    "posesvc_keypoint_score": ("histogram", ("model", "joint")),
    "posesvc_stream_frames_total": ("counter", ("outcome",)),
    "posesvc_active_streams": ("gauge", ()),
    "posesvc_build_info": (
        "gauge",
        ("version", "pose_model", "detector", "device", "precision", "flip_test", "decoder", "backend"),
    ),
    "posesvc_model_ready": ("gauge", ("model",)),
    "posesvc_model_info": ("gauge", ("model", "mode", "backend", "keypoint_schema")),
    "posesvc_worker_restarts_total": ("counter", ()),
    "posesvc_gpu_memory_used_bytes": ("gauge", ("device",)),
}


def _families(m: Metrics) -> dict[str, str]:
    return {f.name: f.type for f in m.registry.collect()}


def _label_names(metric: object) -> tuple[str, ...]:
    return tuple(metric._labelnames)  # type: ignore[attr-defined]


def test_every_required_metric_is_exported_with_type_and_labels(
    exported_sample_names: frozenset[str],
) -> None:
    m = Metrics()
    families = _families(m)
    by_name = {spec.name: spec for spec in METRIC_SPECS}
    for name, (mtype, labels) in REQUIRED.items():
        family = name.removesuffix("_total") if mtype == "counter" else name
        assert families.get(family) == mtype, f"{name}: family {family!r} missing or wrong type"
        assert by_name[name].type == mtype and by_name[name].labels == labels
        if mtype == "counter":
            assert name in exported_sample_names
        elif mtype == "histogram":
            assert {f"{name}_bucket", f"{name}_sum", f"{name}_count"} <= exported_sample_names
        else:
            assert name in exported_sample_names
    # ... and the metric objects carry exactly those label names.
    objects = {f"{spec.name}": getattr(m, spec.name.removeprefix("posesvc_")) for spec in METRIC_SPECS}
    for name, (_, labels) in REQUIRED.items():
        assert _label_names(objects[name]) == labels, name


def test_no_unexpected_families_and_prefix() -> None:
    specs = {spec.constructor_name for spec in METRIC_SPECS}
    families = set(_families(Metrics()))
    assert families == specs
    assert all(name.startswith("posesvc_") for name in families)
    assert {spec.name for spec in METRIC_SPECS} == set(REQUIRED)


def test_spec_sample_names_match_the_registry(exported_sample_names: frozenset[str]) -> None:
    declared = {n for spec in METRIC_SPECS for n in spec.sample_names}
    assert declared == set(exported_sample_names)


def test_instances_are_isolated() -> None:
    a, b = Metrics(), Metrics()
    a.requests_total.labels(transport="rest", method="estimate", code="200").inc()
    labels = {"transport": "rest", "method": "estimate", "code": "200"}
    assert a.registry.get_sample_value("posesvc_requests_total", labels) == 1.0
    assert b.registry.get_sample_value("posesvc_requests_total", labels) is None
    shared = CollectorRegistry()
    Metrics(shared)
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        Metrics(shared)


def test_counters_increment() -> None:
    m = Metrics()
    labels = {"transport": "grpc", "method": "stream_frame", "code": "RESOURCE_EXHAUSTED"}
    for _ in range(3):
        m.requests_total.labels(**labels).inc()
    assert m.registry.get_sample_value("posesvc_requests_total", labels) == 3.0
    m.requests_rejected_total.labels(reason="queue_full").inc(2)
    assert m.registry.get_sample_value("posesvc_requests_rejected_total", {"reason": "queue_full"}) == 2.0
    m.stream_frames_total.labels(outcome="dropped").inc()
    assert m.registry.get_sample_value("posesvc_stream_frames_total", {"outcome": "dropped"}) == 1.0
    m.worker_restarts_total.inc()
    assert m.registry.get_sample_value("posesvc_worker_restarts_total") == 1.0


def test_bounded_series_are_preinitialised_to_zero() -> None:
    m = Metrics()
    for reason in metrics_mod.REJECT_REASONS:
        assert m.registry.get_sample_value("posesvc_requests_rejected_total", {"reason": reason}) == 0.0
    for outcome in metrics_mod.STREAM_OUTCOMES:
        assert m.registry.get_sample_value("posesvc_stream_frames_total", {"outcome": outcome}) == 0.0
    m.register_models(["w32_card", "w48_card", "detector"])  # what the app does with the served cards
    for model in ("w32_card", "w48_card", "detector"):
        assert m.registry.get_sample_value("posesvc_model_ready", {"model": model}) == 0.0
        assert m.registry.get_sample_value("posesvc_batch_queue_items", {"model": model}) == 0.0


def test_histograms_count_observations() -> None:
    m = Metrics()
    for size in (3, 3, 100):
        m.batch_size.labels(model="pose", unit="crops").observe(size)
    get = m.registry.get_sample_value
    lbl = {"model": "pose", "unit": "crops"}
    assert get("posesvc_batch_size_count", lbl) == 3.0
    assert get("posesvc_batch_size_sum", lbl) == 106.0
    assert get("posesvc_batch_size_bucket", {**lbl, "le": "2.0"}) == 0.0
    assert get("posesvc_batch_size_bucket", {**lbl, "le": "4.0"}) == 2.0
    assert get("posesvc_batch_size_bucket", {**lbl, "le": "128.0"}) == 3.0
    assert get("posesvc_batch_size_bucket", {**lbl, "le": "+Inf"}) == 3.0

    with m.stage_duration_seconds.labels(model="card", stage="detect").time():
        pass
    assert get("posesvc_stage_duration_seconds_count", {"model": "card", "stage": "detect"}) == 1.0

    m.persons_per_image.labels(source="detector").observe(0)
    assert get("posesvc_persons_per_image_bucket", {"source": "detector", "le": "0.0"}) == 1.0


def _buckets(name: str) -> tuple[float, ...]:
    return next(spec.buckets for spec in METRIC_SPECS if spec.name == name)


def test_buckets_suit_their_ranges() -> None:
    latency = _buckets("posesvc_request_duration_seconds")
    assert latency[0] <= 0.001 and latency[-1] >= 30
    for name in ("posesvc_stage_duration_seconds", "posesvc_batch_queue_wait_seconds"):
        b = _buckets(name)
        assert b[0] <= 0.0001 and b[-1] >= 10, name
    assert _buckets("posesvc_batch_size") == (1, 2, 4, 8, 16, 32, 64, 128)
    assert _buckets("posesvc_persons_per_image") == (0, 1, 2, 4, 8, 16, 32, 64)
    score = _buckets("posesvc_keypoint_score")
    assert len(score) == 10 and all(math.isclose(b, 0.1 * (i + 1)) for i, b in enumerate(score))
    for spec in METRIC_SPECS:
        assert list(spec.buckets) == sorted(set(spec.buckets)), spec.name


def test_keypoint_scores_per_joint() -> None:
    m = Metrics()
    m.observe_keypoint_scores([[0.95] * 17, [0.05] * 16 + [0.55]], COCO17.joints, "coco_card")
    get = m.registry.get_sample_value
    coco = {"model": "coco_card"}
    assert get("posesvc_keypoint_score_count", {**coco, "joint": "nose"}) == 2.0
    assert get("posesvc_keypoint_score_bucket", {**coco, "joint": "nose", "le": "0.1"}) == 1.0
    assert get("posesvc_keypoint_score_bucket", {**coco, "joint": "right_ankle", "le": "0.5"}) == 0.0
    assert get("posesvc_keypoint_score_bucket", {**coco, "joint": "right_ankle", "le": "0.6"}) == 1.0
    # another schema's joints are their own labels; a row of the wrong length is skipped, never raised
    m.observe_keypoint_scores([[0.5] * 16, [0.5] * 3], MPII16.joints, "mpii_card")
    assert get("posesvc_keypoint_score_count", {"model": "mpii_card", "joint": "head_top"}) == 1.0
    assert get("posesvc_keypoint_score_count", {**coco, "joint": "nose"}) == 2.0


def test_build_info_is_one_and_replaced() -> None:
    m = Metrics()
    common = {"pose_model": "hrnet_w32_256x192_darkpose", "detector": "yolov8n", "precision": "fp32"}
    m.set_build_info(version="0.1.0", device="cpu", flip_test=True, decoder="dark", **common)
    m.set_build_info(version="0.1.1", device="cuda:0", flip_test=False, decoder="standard", **common)
    samples = [s for f in m.registry.collect() if f.name == "posesvc_build_info" for s in f.samples]
    assert len(samples) == 1
    assert samples[0].value == 1.0
    assert samples[0].labels == {**common, "version": "0.1.1", "device": "cuda:0", "flip_test": "false",
                                 "decoder": "standard", "backend": "torch"}  # fmt: skip


def _fake_torch(available: bool, initialized: bool, allocated: list[int]) -> types.ModuleType:
    torch = types.ModuleType("torch")
    torch.cuda = types.SimpleNamespace(  # type: ignore[attr-defined]
        is_available=lambda: available,
        is_initialized=lambda: initialized,
        device_count=lambda: len(allocated),
        memory_allocated=lambda i: allocated[i],
    )
    return torch


def test_gpu_memory_only_with_initialised_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    m = Metrics()
    for available, initialized in ((False, False), (True, False)):
        monkeypatch.setitem(sys.modules, "torch", _fake_torch(available, initialized, [1, 2]))
        m.update_gpu_memory()
        assert m.registry.get_sample_value("posesvc_gpu_memory_used_bytes", {"device": "cuda:0"}) is None
    monkeypatch.setitem(sys.modules, "torch", _fake_torch(True, True, [1024, 2048]))
    m.update_gpu_memory()
    get = m.registry.get_sample_value
    assert get("posesvc_gpu_memory_used_bytes", {"device": "cuda:0"}) == 1024.0
    assert get("posesvc_gpu_memory_used_bytes", {"device": "cuda:1"}) == 2048.0
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch -> ImportError
    m.update_gpu_memory()


def test_render_exposition() -> None:
    m = Metrics()
    m.requests_total.labels(transport="rest", method="estimate", code="200").inc()
    body, content_type = m.render()
    assert content_type.startswith("text/plain")
    text = body.decode()
    assert 'posesvc_requests_total{code="200",method="estimate",transport="rest"} 1.0' in text
    assert "# TYPE posesvc_batch_size histogram" in text
    body, content_type = m.render("application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    assert body.decode().rstrip().endswith("# EOF")


def test_help_texts_are_present() -> None:
    for spec in METRIC_SPECS:
        assert len(spec.help) > 20 and spec.help.endswith((".", ")")), spec.name


def test_module_imports_nothing_else_from_service() -> None:
    package = Path(metrics_mod.__file__).parent
    for path in package.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            elif isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            else:
                continue
            for name in names:
                if name == "service" or name.startswith("service."):
                    assert name.startswith("service.observability"), f"{path.name} imports {name}"


def test_docs_metrics_md_in_sync(repo_root: Path) -> None:
    doc = repo_root / "docs" / "METRICS.md"
    assert doc.read_text() == render_metrics_doc(), (
        "docs/METRICS.md is out of date: python -m service.observability > docs/METRICS.md"
    )
    for name in REQUIRED:
        assert f"| `{name}` |" in doc.read_text()
