"""Observability definitions: Prometheus metrics of posesvc.

This package imports nothing else from ``service`` so that every layer (transport, engine,
pipeline) can import it without cycles.
"""

from service.observability.metrics import (
    METRIC_SPECS,
    Metrics,
    MetricSpec,
    render_metrics_doc,
)

__all__ = ["METRIC_SPECS", "MetricSpec", "Metrics", "render_metrics_doc"]
