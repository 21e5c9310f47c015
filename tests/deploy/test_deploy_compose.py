"""docker-compose.yml: validated by docker-compose itself, plus the wiring it depends on."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

COMPOSE = "docker-compose.yml"


def _config(tool: Callable[[str], str], repo_root: Path, *args: str, quiet: bool = True) -> str:
    cmd = [tool("docker-compose"), "-f", str(repo_root / COMPOSE), *args, "config"]
    if quiet:
        cmd.append("-q")
    proc = subprocess.run(cmd, cwd=repo_root, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, f"{' '.join(cmd)} failed:\n{proc.stderr}"
    return proc.stdout


@pytest.mark.parametrize("profile_args", [(), ("--profile", "gpu")], ids=["default", "gpu-profile"])
def test_compose_config_is_valid(
    tool: Callable[[str], str], repo_root: Path, profile_args: tuple[str, ...]
) -> None:
    _config(tool, repo_root, *profile_args)


def test_compose_rejects_a_broken_file(tool: Callable[[str], str], tmp_path: Path) -> None:
    """The validator really validates: an unknown service key fails."""
    bad = tmp_path / "docker-compose.yml"
    bad.write_text("services:\n  x:\n    image: busybox\n    portz: ['80:80']\n")
    proc = subprocess.run(
        [tool("docker-compose"), "-f", str(bad), "config", "-q"],
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode != 0


def test_gpu_profile_resolves_device_reservation(tool: Callable[[str], str], repo_root: Path) -> None:
    resolved = yaml.safe_load(_config(tool, repo_root, "--profile", "gpu", quiet=False))
    devices = resolved["services"]["posesvc-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["capabilities"] == ["gpu"] and devices[0]["driver"] == "nvidia"


def test_compose_structure(repo_root: Path) -> None:
    doc = yaml.safe_load((repo_root / COMPOSE).read_text())
    services = doc["services"]
    assert {"posesvc", "posesvc-gpu", "prometheus", "grafana"} <= set(services)

    cpu, gpu = services["posesvc"], services["posesvc-gpu"]
    assert cpu["build"]["dockerfile"] == "docker/Dockerfile.cpu"
    assert gpu["build"]["dockerfile"] == "docker/Dockerfile.cuda"
    assert gpu.get("profiles") == ["gpu"] and "profiles" not in cpu
    for svc in (cpu, gpu):
        assert (repo_root / svc["build"]["dockerfile"]).is_file()
        assert {"8000:8000", "50051:50051"} <= set(svc["ports"])
        assert any(v.endswith(":/var/cache/posesvc") for v in svc["volumes"])
        env = svc["environment"]
        assert env["POSESVC_WEIGHTS_DIR"] == "/var/cache/posesvc"
        assert all(key.startswith("POSESVC_") for key in env)
        assert "/healthz" in " ".join(svc["healthcheck"]["test"])

    # Bind-mounted configuration files exist where the containers expect them.
    for name in ("prometheus", "grafana"):
        for volume in services[name]["volumes"]:
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (repo_root / source).exists(), f"{name}: {source} missing"
    assert (
        "./docker/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro"
        in services["prometheus"]["volumes"]
    )


def test_grafana_provisioning(repo_root: Path) -> None:
    datasources = yaml.safe_load(
        (repo_root / "docker/grafana/provisioning/datasources/prometheus.yml").read_text()
    )["datasources"]
    assert datasources[0]["type"] == "prometheus"
    assert datasources[0]["url"] == "http://prometheus:9090"
    providers = yaml.safe_load(
        (repo_root / "docker/grafana/provisioning/dashboards/dashboards.yml").read_text()
    )["providers"]
    compose = yaml.safe_load((repo_root / COMPOSE).read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    # The provider path is where compose mounts docker/grafana/dashboards.
    assert f"./docker/grafana/dashboards:{providers[0]['options']['path']}:ro" in mounts
