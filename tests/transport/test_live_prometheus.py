"""A real Prometheus (Debian's ``prometheus``, on loopback) scrapes a running server: after REST, gRPC, stream and
rejected traffic, every PromQL query of the Grafana dashboard and of the prometheus-adapter rule returns data
(the GPU memory panel aside on a CPU server), and ``promtool check config`` accepts the shipped config and the
one used here."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import httpx
import pytest
import yaml

from service.client.grpc_client import GrpcPoseClient, StreamFrame
from service.pipeline.image import decode_image
from service.streaming.session import StreamOptions

from .conftest import free_port

REPO = Path(__file__).resolve().parents[2]
GPU_ONLY = {"posesvc_gpu_memory_used_bytes"}


def _binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} not installed: run .ci/install-deploy-tools.sh (Debian package 'prometheus')")
    return path


def _dashboard_queries() -> list[tuple[str, str]]:
    dash = json.loads((REPO / "docker" / "grafana" / "dashboards" / "posesvc.json").read_text())
    out: list[tuple[str, str]] = []

    def walk(panels: list[dict]) -> None:
        for p in panels:
            out.extend((p.get("title", ""), t["expr"]) for t in p.get("targets", []) if t.get("expr"))
            walk(p.get("panels", []))

    walk(dash["panels"])
    return out


def _adapter_query() -> str:
    rules = yaml.safe_load((REPO / "helm" / "posesvc" / "prometheus-adapter-rules.yaml").read_text())
    q = rules["rules"]["custom"][0]["metricsQuery"]
    return q.replace("<<.LabelMatchers>>", 'job="posesvc"').replace("<<.GroupBy>>", "instance")


def _concrete(expr: str) -> str:
    """Grafana's variables as a dashboard would fill them for this one server."""
    return (expr.replace('job=~"$job"', 'job=~"posesvc"').replace('instance=~"$instance"', 'instance=~".+"')
            .replace("$__rate_interval", "30s").replace("$__range", "1h"))  # fmt: skip


def _query(base: str, expr: str) -> list[dict]:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    with urllib.request.urlopen(url, timeout=5) as r:  # nosec B310 - loopback Prometheus
        body = json.loads(r.read())
    assert body["status"] == "success", body
    return body["data"]["result"]


def _traffic(server, coco_jpeg: bytes) -> None:
    url = server.http
    box = "[[60, 40, 180, 260]]"
    for _ in range(3):
        r = httpx.post(f"{url}/v1/pose", files={"image": ("x.jpg", coco_jpeg, "image/jpeg")}, data={"boxes": box},
                       timeout=60)  # fmt: skip
        assert r.status_code == 200
    assert httpx.post(f"{url}/v1/pose", content=b"GIF89a", headers={"Content-Type": "image/gif"}).status_code == 415
    assert httpx.post(f"{url}/v1/pose", content=b"\xff\xd8 not a jpeg", headers={"Content-Type": "image/jpeg"}).status_code == 400
    client = GrpcPoseClient(server.grpc)
    try:
        client.estimate(coco_jpeg, boxes=[[60, 40, 180, 260]])
        rgb = decode_image(coco_jpeg)
        frames = [StreamFrame(i, rgb, [[60, 40, 180, 260]] if i == 0 else None, i / 10) for i in range(3)]
        assert len([a for a in client.stream(frames, StreamOptions(detect_every=100)) if a.result]) == 3
    finally:
        client.close()


def test_live_prometheus_answers_every_dashboard_query(server, coco_jpeg, tmp_path: Path) -> None:
    prometheus, promtool = _binary("prometheus"), _binary("promtool")
    shipped = subprocess.run([promtool, "check", "config", str(REPO / "docker" / "prometheus" / "prometheus.yml")],
                             capture_output=True, text=True)  # fmt: skip
    assert shipped.returncode == 0, shipped.stdout + shipped.stderr
    target = server.http.removeprefix("http://")
    config = tmp_path / "prometheus.yml"
    config.write_text(yaml.safe_dump({
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "scrape_configs": [{"job_name": "posesvc", "metrics_path": "/metrics", "static_configs": [{"targets": [target]}]}],
    }))  # fmt: skip
    check = subprocess.run([promtool, "check", "config", str(config)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    port = free_port()
    log = tmp_path / "prometheus.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [prometheus, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        _traffic(server, coco_jpeg)
        queries = [(t, _concrete(e)) for t, e in _dashboard_queries()] + [("prometheus-adapter", _adapter_query())]
        assert len(queries) > 15
        missing: list[str] = []
        deadline = time.monotonic() + 90
        while True:
            missing = []
            for title, expr in queries:
                if any(name in expr for name in GPU_ONLY):
                    continue
                try:
                    if not _query(base, expr):
                        missing.append(f"{title}: {expr}")
                except OSError:
                    missing.append(f"{title}: (prometheus not answering yet)")
            if not missing or time.monotonic() > deadline:
                break
            if proc.poll() is not None:
                pytest.fail(f"prometheus exited: {log.read_text()[-2000:]}")
            _traffic(server, coco_jpeg)  # keep the rates alive while the scrapes accumulate
            time.sleep(2)
        assert not missing, "queries without data:\n" + "\n".join(missing)
        up = _query(base, 'up{job="posesvc"}')
        assert [float(s["value"][1]) for s in up] == [1.0]
        info = _query(base, "posesvc_build_info")
        assert info[0]["metric"]["backend"] and info[0]["metric"]["pose_model"] == "darkpose_small_fixture"
    finally:
        proc.terminate()
        proc.wait(30)
