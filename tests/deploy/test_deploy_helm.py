"""helm/posesvc without a helm binary: values vs schema, templates as YAML after neutralising the
Go template directives, and cross-references (values paths, helpers, prometheus-adapter rules)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

CHART = Path("helm/posesvc")

# ---------------------------------------------------------------------------------------------
# Neutraliser
# ---------------------------------------------------------------------------------------------

PLACEHOLDER = "TEMPLATED"
_DIRECTIVE = r"\{\{(?:(?!\}\}).)*\}\}"  # one {{ ... }} action; may span lines, never crosses }}
_DIRECTIVE_ONLY_LINE = re.compile(rf"^[ \t]*(?:{_DIRECTIVE}[ \t]*)+(?:\n|\Z)", re.MULTILINE | re.DOTALL)
_INLINE_DIRECTIVE = re.compile(_DIRECTIVE, re.DOTALL)


def neutralise(template: str) -> str:
    """Turn a Helm template into plain YAML text, approximately, without a Go template engine.

    1. Lines holding only actions (``{{- if ... }}``, ``{{- end }}``, ``{{/* comment */}}``,
       ``{{- include "x" . | nindent 4 }}``, ``{{- toYaml . | nindent 8 }}``) are dropped: control
       flow disappears, so every branch of an if/else is kept, and a key whose value was a
       whole-line include/toYaml becomes null.
    2. Any other action, inline in a line, becomes the plain scalar ``TEMPLATED``
       (``name: {{ include "posesvc.fullname" . }}`` -> ``name: TEMPLATED``; inside quotes too).

    Consequences the templates must respect for this check to be meaningful: branches of one
    if/else must not define the same key (duplicate keys are rejected by the loader below), and
    actions must not emit YAML structure in the middle of a line.
    """
    text = _DIRECTIVE_ONLY_LINE.sub("", template)
    return _INLINE_DIRECTIVE.sub(PLACEHOLDER, text)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects duplicate mapping keys (PyYAML silently keeps the last one)."""


def _construct_mapping(loader: yaml.SafeLoader, node: yaml.MappingNode, deep: bool = False) -> Any:
    keys = [loader.construct_object(k, deep=deep) for k, _ in node.value]
    duplicates = {k for k in keys if keys.count(k) > 1}
    if duplicates:
        raise yaml.constructor.ConstructorError(None, None, f"duplicate keys {duplicates}", node.start_mark)
    return loader.construct_mapping(node, deep=deep)


_UniqueKeyLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def load_all(text: str) -> list[Any]:
    return [doc for doc in yaml.load_all(text, Loader=_UniqueKeyLoader) if doc is not None]


def test_neutraliser() -> None:
    template = (
        "{{- if .Values.enabled }}\n"
        "apiVersion: v1\n"
        "kind: ConfigMap\n"
        "metadata:\n"
        '  name: {{ include "x.fullname" . }}\n'
        "  labels:\n"
        '    {{- include "x.labels" . | nindent 4 }}\n'
        "  {{- /* a comment\n     on two lines */}}\n"
        "data:\n"
        '  image: "{{ .Values.repo }}:{{ .Values.tag }}"\n'
        '  args: ["a", {{ .Values.b | quote }}]\n'
        "{{- end }}\n"
    )
    assert load_all(neutralise(template)) == [{
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": PLACEHOLDER, "labels": None},
        "data": {"image": f"{PLACEHOLDER}:{PLACEHOLDER}", "args": ["a", PLACEHOLDER]},
    }]  # fmt: skip
    with pytest.raises(yaml.YAMLError):
        load_all(neutralise("a:\n{{- if .x }}\n  b: 1\n{{- else }}\n  b: 2\n{{- end }}\n"))
    with pytest.raises(yaml.YAMLError):  # real YAML errors survive neutralising
        load_all(neutralise("a: {{ .x }}\n  b: [\n"))


# ---------------------------------------------------------------------------------------------
# Chart files
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chart(repo_root: Path) -> Path:
    return repo_root / CHART


@pytest.fixture(scope="module")
def values(chart: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((chart / "values.yaml").read_text())
    return loaded


@pytest.fixture(scope="module")
def schema(chart: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((chart / "values.schema.json").read_text())
    return loaded


def test_chart_yaml(chart: Path) -> None:
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    assert meta["apiVersion"] == "v2" and meta["name"] == "posesvc" and meta["type"] == "application"
    assert re.fullmatch(r"\d+\.\d+\.\d+", meta["version"]) and meta["appVersion"]


def test_values_match_schema(values: dict[str, Any], schema: dict[str, Any]) -> None:
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.Draft7Validator(schema).validate(values)


def _schema_paths(schema: dict[str, Any], prefix: str = "") -> set[str]:
    paths = set()
    for key, sub in schema.get("properties", {}).items():
        path = f"{prefix}{key}"
        paths.add(path)
        paths |= _schema_paths(sub, path + ".")
    return paths


def _value_paths(values: Any, prefix: str = "") -> set[str]:
    paths = set()
    if isinstance(values, dict):
        for key, sub in values.items():
            paths.add(f"{prefix}{key}")
            paths |= _value_paths(sub, f"{prefix}{key}.")
    return paths


def test_schema_covers_every_value(values: dict[str, Any], schema: dict[str, Any]) -> None:
    described = _schema_paths(schema)
    # Free-form Kubernetes objects (resources, securityContext, ...) are typed as a whole.
    opaque = {p for p in described if not _schema_paths(_get_schema(schema, p)) and
              _get_schema(schema, p).get("type") == "object"}  # fmt: skip
    for path in _value_paths(values):
        assert path in described or any(path.startswith(o + ".") for o in opaque), f"{path} not in schema"


def _get_schema(schema: dict[str, Any], path: str) -> dict[str, Any]:
    node = schema
    for key in path.split("."):
        node = node["properties"][key]
    return node


def _with(values: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    bad = copy.deepcopy(values)
    node = bad
    keys = path.split(".")
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value
    return bad


BAD_VALUES = [
    ("image.flavor", "gpu"),
    ("image.pullPolicy", "Sometimes"),
    ("ports.http", 70000),
    ("service.grpcPort", "50051"),
    ("probes.readiness.type", "tcp"),
    ("probes.startup.failureThreshold", 0),
    ("config.device", "tpu"),
    ("config.engine.maxBatchImages", 0),
    ("config.extraEnv", {"OTHER_VAR": "1"}),
    ("config.modelCard", "../etc/passwd"),
    ("gpu.count", 0),
    ("autoscaling.cpu.targetAverageUtilization", 150),
    ("autoscaling.queueWait.targetAverageValue", "fifty"),
    ("serviceMonitor.interval", "often"),
    ("weights.persistence.accessModes", ["ReadWriteSometimes"]),
    ("resources", {"requests": {"cpu": "lots"}}),
    ("notAValue", True),
    ("config.engine.unknown", 1),
]


@pytest.mark.parametrize(("path", "value"), BAD_VALUES, ids=[p for p, _ in BAD_VALUES])
def test_schema_rejects_bad_values(
    values: dict[str, Any], schema: dict[str, Any], path: str, value: Any
) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft7Validator(schema).validate(_with(values, path, value))


def test_schema_accepts_documented_alternatives(values: dict[str, Any], schema: dict[str, Any]) -> None:
    validator = jsonschema.Draft7Validator(schema)
    for path, value in [
        ("probes.readiness.type", "grpc"),
        ("image.flavor", "cuda"),
        ("config.device", "cuda:1"),
        ("config.extraEnv", {"POSESVC_ENGINE__MAX_DELAY_MS": "5"}),
        ("podDisruptionBudget.minAvailable", "50%"),
        ("gpu.enabled", True),
    ]:
        validator.validate(_with(values, path, value))


def _templates(chart: Path) -> list[Path]:
    found = sorted((chart / "templates").glob("*.yaml"))
    assert found
    return found


EXPECTED_KINDS = {
    "deployment.yaml": ("apps/v1", "Deployment"),
    "service.yaml": ("v1", "Service"),
    "configmap.yaml": ("v1", "ConfigMap"),
    "hpa.yaml": ("autoscaling/v2", "HorizontalPodAutoscaler"),
    "servicemonitor.yaml": ("monitoring.coreos.com/v1", "ServiceMonitor"),
    "pdb.yaml": ("policy/v1", "PodDisruptionBudget"),
    "pvc.yaml": ("v1", "PersistentVolumeClaim"),
    "serviceaccount.yaml": ("v1", "ServiceAccount"),
}


def test_templates_are_yaml_after_neutralising(chart: Path) -> None:
    names = {t.name for t in _templates(chart)}
    assert set(EXPECTED_KINDS) <= names
    for template in _templates(chart):
        docs = load_all(neutralise(template.read_text()))
        assert len(docs) == 1, template.name
        doc = docs[0]
        assert isinstance(doc, dict) and "metadata" in doc and "name" in doc["metadata"], template.name
        if template.name in EXPECTED_KINDS:
            assert (doc["apiVersion"], doc["kind"]) == EXPECTED_KINDS[template.name]


def _neutralised(chart: Path, name: str) -> dict[str, Any]:
    doc: dict[str, Any] = load_all(neutralise((chart / "templates" / name).read_text()))[0]
    return doc


def test_deployment_shape(chart: Path) -> None:
    pod = _neutralised(chart, "deployment.yaml")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert {p["name"] for p in container["ports"]} == {"http", "grpc"}
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["startupProbe"]["httpGet"]["path"] == "/readyz"
    readiness = container["readinessProbe"]
    assert readiness["httpGet"]["path"] == "/readyz" and "port" in readiness["grpc"]  # both branches kept
    assert container["args"][:3] == ["serve", "--host", "0.0.0.0"]
    assert "--http-port" in container["args"] and "--grpc-port" in container["args"]
    assert container["envFrom"][0]["configMapRef"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts["tmp"] == "/tmp" and "weights" in mounts
    init, detector_init = pod["initContainers"]
    assert init["args"][:3] == ["weights", "fetch", "--card"]
    assert detector_init["args"][:3] == ["weights", "fetch", "--detector"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "persistentVolumeClaim" in volumes["weights"] and "emptyDir" in volumes["weights"]
    assert "emptyDir" in volumes["tmp"]
    text = (chart / "templates/deployment.yaml").read_text()
    for name in ("gpu.resourceName", "nodeSelector", "tolerations", "affinity", "securityContext"):
        assert f".Values.{name}" in text, name
    assert ".Values.podSecurityContext" in text


def test_default_security_values(values: dict[str, Any]) -> None:
    assert values["podSecurityContext"]["runAsNonRoot"] is True
    assert values["securityContext"]["readOnlyRootFilesystem"] is True
    assert values["securityContext"]["allowPrivilegeEscalation"] is False
    assert values["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert values["config"]["modelCard"] == "hrnet_w32_256x192_mmpose_dark"  # one with a download URL


def test_service_ports(chart: Path) -> None:
    ports = {p["name"]: p for p in _neutralised(chart, "service.yaml")["spec"]["ports"]}
    assert ports["grpc"]["appProtocol"] == "grpc" and ports["grpc"]["targetPort"] == "grpc"
    assert ports["http"]["targetPort"] == "http"


def test_configmap_only_posesvc_settings(chart: Path) -> None:
    data = _neutralised(chart, "configmap.yaml")["data"]
    assert all(k.startswith("POSESVC_") or k == PLACEHOLDER for k in data)
    assert {"POSESVC_MODEL__CARD", "POSESVC_WEIGHTS_DIR", "POSESVC_ENGINE__MAX_BATCH_IMAGES"} <= set(data)


def test_hpa_metrics(chart: Path, values: dict[str, Any]) -> None:
    metrics = _neutralised(chart, "hpa.yaml")["spec"]["metrics"]
    assert [m["type"] for m in metrics] == ["Pods", "Resource"]
    assert metrics[0]["pods"]["target"]["type"] == "AverageValue"
    assert metrics[1]["resource"]["name"] == "cpu"
    assert values["autoscaling"]["queueWait"]["metricName"] == "posesvc_queue_wait_seconds_avg"


def test_value_references_exist(chart: Path, values: dict[str, Any]) -> None:
    """Every `.Values.a.b` used by a template or helper is defined in values.yaml."""
    paths = _value_paths(values)
    files = [*_templates(chart), chart / "templates/_helpers.tpl", chart / "templates/NOTES.txt"]
    used = {ref for f in files for ref in re.findall(r"\.Values\.([A-Za-z0-9_.]+)", f.read_text())}
    assert used
    missing = {ref for ref in used if ref.rstrip(".") not in paths}
    assert not missing, f"templates use undefined values: {sorted(missing)}"


def test_included_helpers_are_defined(chart: Path) -> None:
    helpers = (chart / "templates/_helpers.tpl").read_text()
    defined = set(re.findall(r'define "([^"]+)"', helpers))
    text = "\n".join(f.read_text() for f in (chart / "templates").iterdir())
    included = set(re.findall(r'include "([^"]+)"', text))
    assert included and included <= defined, included - defined


def test_prometheus_adapter_rules(
    chart: Path, values: dict[str, Any], exported_sample_names: frozenset[str]
) -> None:
    rules = yaml.safe_load((chart / "prometheus-adapter-rules.yaml").read_text())["rules"]
    (rule,) = rules["custom"]
    assert rule["name"]["as"] == values["autoscaling"]["queueWait"]["metricName"]
    series = re.match(r"[a-zA-Z_:][\w:]*", rule["seriesQuery"])
    assert series and series.group(0) in exported_sample_names
    assert re.fullmatch(rule["name"]["matches"], series.group(0))
    query = rule["metricsQuery"]
    referenced = set(re.findall(r"posesvc_\w+", query))
    assert referenced == {"posesvc_batch_queue_wait_seconds_sum", "posesvc_batch_queue_wait_seconds_count"}
    assert referenced <= exported_sample_names
    assert "<<.LabelMatchers>>" in query and "<<.GroupBy>>" in query
    assert set(rule["resources"]["overrides"]) == {"namespace", "pod"}
