"""Observed engine batch sizes from a server's ``/metrics`` (Prometheus text), as before/after deltas.

The engine observes ``posesvc_batch_size{model=<card name>, unit="images"|"crops"}`` once per batch (images per
pipeline call, person crops per forward chunk); the delta of ``_count``/``_sum``/``_bucket`` between two
scrapes describes the batches formed while the load ran.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

_LINE = re.compile(r"^(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(?P<labels>[^}]*)\})?\s+(?P<value>\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
METRIC = "posesvc_batch_size"


def parse_prometheus(text: str) -> list[tuple[str, dict[str, str], float]]:
    """``(name, labels, value)`` for every sample line of a Prometheus text exposition."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if m is None:
            continue
        labels = dict(_LABEL.findall(m.group("labels") or ""))
        try:
            out.append((m.group("name"), labels, float(m.group("value"))))
        except ValueError:
            continue
    return out


@dataclass
class BatchHistogram:
    """One ``posesvc_batch_size`` series: ``count`` batches, ``total`` items, cumulative ``buckets`` by ``le``."""

    count: float = 0.0
    total: float = 0.0
    buckets: dict[str, float] = field(default_factory=dict)

    def minus(self, before: BatchHistogram) -> BatchHistogram:
        return BatchHistogram(
            self.count - before.count,
            self.total - before.total,
            {le: v - before.buckets.get(le, 0.0) for le, v in self.buckets.items()},
        )

    def summary(self) -> dict[str, Any]:
        """``batches``, ``mean`` batch size, and the non-cumulative count per bucket upper bound ``le``."""
        per: dict[str, float] = {}
        prev = 0.0
        for le, v in sorted(self.buckets.items(), key=lambda kv: float(kv[0])):
            if v - prev > 0:
                per[le] = v - prev
            prev = v
        return {
            "batches": int(self.count),
            "items": int(self.total),
            "mean": round(self.total / self.count, 3) if self.count else None,
            "histogram": {le: int(v) for le, v in per.items()},
        }


def batch_histograms(text: str, model: str | None = None) -> dict[str, BatchHistogram]:
    """``{unit: BatchHistogram}`` for ``posesvc_batch_size{model=...}`` in a ``/metrics`` text; ``model=None``
    adds up every pose model the server serves (every ``model`` label but ``detector``)."""
    out: dict[str, BatchHistogram] = {}
    for name, labels, value in parse_prometheus(text):
        if not name.startswith(METRIC) or "unit" not in labels:
            continue
        label = labels.get("model")
        if (model is not None and label != model) or (model is None and label == "detector"):
            continue
        h = out.setdefault(labels["unit"], BatchHistogram())
        if name == METRIC + "_count":
            h.count += value
        elif name == METRIC + "_sum":
            h.total += value
        elif name == METRIC + "_bucket" and "le" in labels:
            h.buckets[labels["le"]] = h.buckets.get(labels["le"], 0.0) + value
    return out


def batch_deltas(before: str | None, after: str | None, model: str | None = None) -> dict[str, Any]:
    """Per unit (``images``, ``crops``) summary of the batches formed between two scrapes."""
    if before is None or after is None:
        return {}
    b, a = batch_histograms(before, model), batch_histograms(after, model)
    return {unit: h.minus(b.get(unit, BatchHistogram())).summary() for unit, h in sorted(a.items())}
