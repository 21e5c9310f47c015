"""deploy/k8s/*.yaml pass kubernetes-validate (bundled schemas, no network) and agree with the
chart's default values."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

# The chart's kubeVersion floor (gRPC probes are GA since 1.27); validated against the oldest
# bundled schema version at or above it and against the newest one.
MIN_KUBERNETES = (1, 27)


def _versions(module: Callable[[str], Any]) -> list[str]:
    utils = module("kubernetes_validate.utils")
    available = sorted({tuple(int(x) for x in v.split(".")[:2]) for v in utils.all_versions()})
    eligible = [v for v in available if v >= MIN_KUBERNETES]
    assert eligible, available
    return sorted({f"{v[0]}.{v[1]}.0" for v in (eligible[0], eligible[-1])})


def _manifests(repo_root: Path) -> list[Path]:
    found = sorted((repo_root / "deploy/k8s").glob("*.yaml"))
    assert found
    return found


def _validate(tool: Callable[[str], str], version: str, *files: Path) -> subprocess.CompletedProcess[str]:
    cmd = [tool("kubernetes-validate"), "--strict", "--quiet", "-k", version, *map(str, files)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def test_kubernetes_validate(
    tool: Callable[[str], str], module: Callable[[str], Any], repo_root: Path
) -> None:
    versions = _versions(module)
    for version in versions:
        proc = _validate(tool, version, *_manifests(repo_root))
        assert proc.returncode == 0, f"kubernetes-validate -k {version}:\n{proc.stdout}{proc.stderr}"


def test_kubernetes_validate_rejects_a_bad_manifest(
    tool: Callable[[str], str], module: Callable[[str], Any], tmp_path: Path
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  ports: [{port: http}]\n")
    assert _validate(tool, _versions(module)[-1], bad).returncode != 0


def _docs(repo_root: Path) -> dict[str, Any]:
    return {d["kind"]: d for f in _manifests(repo_root) for d in yaml.safe_load_all(f.read_text()) if d}


def test_manifest_matches_chart_defaults(repo_root: Path) -> None:
    values = yaml.safe_load((repo_root / "helm/posesvc/values.yaml").read_text())
    docs = _docs(repo_root)
    assert {"Deployment", "Service", "ConfigMap"} <= set(docs)
    pod = docs["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": values["ports"]["http"], "grpc": values["ports"]["grpc"]}
    assert container["resources"] == values["resources"]
    assert container["securityContext"] == values["securityContext"]
    assert pod["securityContext"] == values["podSecurityContext"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    startup = container["startupProbe"]
    assert startup["httpGet"]["path"] == "/readyz"
    assert startup["failureThreshold"] == values["probes"]["startup"]["failureThreshold"]
    assert pod["initContainers"][0]["args"] == ["weights", "fetch", "--card", values["config"]["modelCard"]]
    detector = values["weights"]["fetch"]["detector"]
    assert pod["initContainers"][1]["args"] == ["weights", "fetch", "--detector", detector]
    config = docs["ConfigMap"]["data"]
    assert config["POSESVC_MODEL__CARD"] == values["config"]["modelCard"]
    assert config["POSESVC_WEIGHTS_DIR"] == values["config"]["weightsDir"]
    svc_ports = {p["name"]: p for p in docs["Service"]["spec"]["ports"]}
    assert svc_ports["grpc"]["appProtocol"] == "grpc"
    assert svc_ports["http"]["port"] == values["service"]["httpPort"]
    assert docs["Service"]["spec"]["selector"] == docs["Deployment"]["spec"]["selector"]["matchLabels"]
