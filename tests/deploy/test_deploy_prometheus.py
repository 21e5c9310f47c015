"""docker/prometheus/prometheus.yml scrapes posesvc's /metrics every 5 s."""

from __future__ import annotations

from pathlib import Path

import yaml


def test_prometheus_scrapes_posesvc_metrics(repo_root: Path) -> None:
    config = yaml.safe_load((repo_root / "docker/prometheus/prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    job = jobs["posesvc"]
    assert job.get("metrics_path", "/metrics") == "/metrics"
    assert job["scrape_interval"] == "5s"
    targets = [t for sc in job["static_configs"] for t in sc["targets"]]
    assert "posesvc:8000" in targets
    # Every target is a compose service on the HTTP port.
    compose = yaml.safe_load((repo_root / "docker-compose.yml").read_text())
    for target in targets:
        host, port = target.split(":")
        assert host in compose["services"] and port == "8000", target
