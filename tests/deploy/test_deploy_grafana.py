"""docker/grafana/dashboards/posesvc.json: parses, has the expected panels, and every PromQL
expression references only metric names that service.observability.metrics exports."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from service.observability.metrics import METRIC_SPECS

DASHBOARD = "docker/grafana/dashboards/posesvc.json"

_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset",
             "and", "or", "unless", "inf", "nan", "atan2"}  # fmt: skip
_IDENT = re.compile(r"(?<![\w.$])[a-zA-Z_:][a-zA-Z0-9_:]*")


def promql_metric_names(expr: str) -> set[str]:
    """Metric names referenced by a PromQL expression (a lexer-level approximation).

    Drops string literals, label matchers ``{...}``, ranges ``[...]`` and grouping clauses
    ``by (...)``/``on (...)``…, then keeps identifiers that are not keywords, not function calls
    (followed by ``(``) and not part of a number (``1e-9``) or a Grafana variable (``$job``).
    """
    s = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    s = re.sub(r"\{[^}]*\}", " ", s)
    s = re.sub(r"\[[^\]]*\]", " ", s)
    s = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", s)
    names = set()
    for match in _IDENT.finditer(s):
        token = match.group(0)
        if token in _KEYWORDS or s[match.end() :].lstrip().startswith("("):
            continue
        names.add(token)
    return names


def test_promql_extractor() -> None:
    expr = (
        "histogram_quantile(0.99, sum by (le, model) (rate(posesvc_batch_queue_wait_seconds_bucket"
        '{job=~"$job", le!="posesvc_fake"}[$__rate_interval]))) / clamp_min(sum(up offset 5m), 1e-9)'
    )
    assert promql_metric_names(expr) == {"posesvc_batch_queue_wait_seconds_bucket", "up"}
    assert promql_metric_names("a_total and on (pod) b") == {"a_total", "b"}


def _load(repo_root: Path) -> dict[str, Any]:
    return json.loads((repo_root / DASHBOARD).read_text())


def _panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])  # collapsed rows nest their panels


def _exprs(panel: dict[str, Any]) -> list[str]:
    return [t["expr"] for t in panel.get("targets", []) if t.get("expr")]


def test_dashboard_parses_and_is_well_formed(repo_root: Path) -> None:
    dashboard = _load(repo_root)
    assert dashboard["uid"] == "posesvc" and dashboard["title"]
    ids = [p["id"] for p in _panels(dashboard)]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in _panels(dashboard):
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"]), panel["title"]
        if panel["type"] != "row":
            assert _exprs(panel), f"panel {panel['title']!r} has no query"
            assert panel["datasource"]["uid"] == "${datasource}"


def test_every_promql_metric_is_exported(repo_root: Path, exported_sample_names: frozenset[str]) -> None:
    dashboard = _load(repo_root)
    queries = [(p["title"], e) for p in _panels(dashboard) for e in _exprs(p)]
    for var in dashboard["templating"]["list"]:
        if var["type"] == "query":
            query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
            m = re.match(r"label_values\(\s*([a-zA-Z_:][\w:]*)", query)
            assert m, query
            queries.append((f"variable {var['name']}", m.group(1)))
    assert len(queries) > 15
    for where, expr in queries:
        names = promql_metric_names(expr)
        assert names, f"{where}: no metric in {expr!r}"
        unknown = names - exported_sample_names
        assert not unknown, f"{where}: {sorted(unknown)} not exported by service.observability.metrics"


def test_bucket_bounds_in_queries_exist(repo_root: Path) -> None:
    """`le="0.3"` style matchers must name a real bucket bound (as prometheus-client formats it)."""
    bounds = {spec.name: {repr(float(b)) for b in spec.buckets} for spec in METRIC_SPECS if spec.buckets}
    for panel in _panels(_load(repo_root)):
        for expr in _exprs(panel):
            for metric, le in re.findall(r'(posesvc_\w+)_bucket\{[^}]*le="([^"]+)"', expr):
                assert le in bounds[metric] or le == "+Inf", f"{panel['title']}: le={le} for {metric}"


# (title fragment, metric the panel must query, extra fragments its queries must contain)
REQUIRED_PANELS = [
    ("Throughput", "posesvc_requests_total", ["transport", "code"]),
    ("latency p50 / p90 / p99", "posesvc_request_duration_seconds_bucket", ["0.5,", "0.9,", "0.99,"]),
    ("Stage", "posesvc_stage_duration_seconds_sum", ["stage"]),
    ("Batch size", "posesvc_batch_size_sum", ["unit"]),
    ("Queue wait", "posesvc_batch_queue_wait_seconds_sum", []),
    ("Queue items", "posesvc_batch_queue_items", []),
    ("Rejections", "posesvc_requests_rejected_total", ["reason"]),
    ("Persons per image", "posesvc_persons_per_image_sum", []),
    ("Keypoint score", "posesvc_keypoint_score_sum", ["joint"]),
    ("Active streams", "posesvc_active_streams", []),
    ("Stream frames", "posesvc_stream_frames_total", ["outcome"]),
    ("Model ready", "posesvc_model_ready", []),
]


@pytest.mark.parametrize(
    ("title", "metric", "fragments"), REQUIRED_PANELS, ids=[p[0] for p in REQUIRED_PANELS]
)
def test_required_panel(repo_root: Path, title: str, metric: str, fragments: list[str]) -> None:
    matches = [p for p in _panels(_load(repo_root)) if title.lower() in p["title"].lower()]
    assert matches, f"no panel titled like {title!r}"
    exprs = [e for p in matches for e in _exprs(p)]
    assert any(metric in promql_metric_names(e) for e in exprs), f"{title}: does not query {metric}"
    joined = " ".join(exprs)
    for fragment in fragments:
        assert fragment in joined, f"{title}: queries lack {fragment!r}"


def test_every_metric_family_is_on_the_dashboard(repo_root: Path) -> None:
    used = {n for p in _panels(_load(repo_root)) for e in _exprs(p) for n in promql_metric_names(e)}
    for spec in METRIC_SPECS:
        assert set(spec.sample_names) & used, f"{spec.name} is not on the dashboard"
