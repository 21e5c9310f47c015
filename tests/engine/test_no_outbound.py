"""A serving process never installs packages or opens outbound connections because of a request, and the
detector's stage is reported: the real app and engine with the real (untrained) YOLO detector, in-process,
with every subprocess and non-loopback connection recorded."""

from __future__ import annotations

import ipaddress
import re
import socket
import subprocess

import httpx
import pytest

from service.engine import PoseEngine
from service.engine.metrics import metrics_hooks
from service.observability.metrics import Metrics
from service.pipeline.detector import DetectorConfig, YoloPersonDetector
from service.settings import Settings
from service.transport.http.app import create_app

from .conftest import Factory, config, run_engine


class Recorder:
    """Records subprocess launches and connections to anything but loopback (and refuses them)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[str] = []
        real_connect = socket.socket.connect

        def popen(*args, **kwargs):
            self.calls.append(f"subprocess {args[0] if args else kwargs.get('args')!r}")
            raise OSError("subprocesses are not allowed in this test")

        def connect(sock, address):
            host = address[0] if isinstance(address, tuple) else None
            if host is not None and not _loopback(host):
                self.calls.append(f"connect {address!r}")
                raise OSError("outbound connections are not allowed in this test")
            return real_connect(sock, address)

        def getaddrinfo(host, *args, **kwargs):
            if host is not None and not _loopback(str(host)):
                self.calls.append(f"resolve {host!r}")
                raise socket.gaierror("name resolution is not allowed in this test")
            return real_getaddrinfo(host, *args, **kwargs)

        real_getaddrinfo = socket.getaddrinfo
        monkeypatch.setattr(subprocess, "Popen", popen)
        monkeypatch.setattr(socket.socket, "connect", connect)
        monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def _loopback(host: str) -> bool:
    if host in ("localhost", "test", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture(scope="module")
def untrained_detector() -> YoloPersonDetector:
    return YoloPersonDetector(DetectorConfig(weights="yolov8n.yaml", max_det=2, imgsz=160, conf=0.0))


def test_garbage_upload_no_install_no_network_and_detect_stage(
    base_estimator, untrained_detector, small_card_path, coco_samples, monkeypatch
):
    s = Settings()
    s = s.model_copy(update={"model": s.model.model_copy(update={"card": str(small_card_path)})})
    metrics = Metrics()
    engine = PoseEngine(config(), Factory(base_estimator, untrained_detector), ["cpu"],
                        hooks=metrics_hooks(metrics, base_estimator.card.joint_names, base_estimator.card.name))  # fmt: skip
    app = create_app(s, engine, metrics=metrics)
    garbage = b"this is not an image, whatever its content type says " * 50  # Pillow cannot identify it

    async def body(_engine):
        rec = Recorder(monkeypatch)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as c:
            multipart = await c.post("/v1/pose", files={"image": ("x.jpg", garbage, "image/jpeg")})
            raw = await c.post("/v1/pose", content=garbage, headers={"Content-Type": "image/jpeg"})
            detected = await c.post("/v1/pose", files={"image": ("a.jpg", coco_samples[0].data, "image/jpeg")})
            scrape = await c.get("/metrics")
        return rec.calls, multipart, raw, detected, scrape

    calls, multipart, raw, detected, scrape = run_engine(engine, body)
    assert calls == []  # no pip, no subprocess, no DNS, no connection
    for r in (multipart, raw):
        assert r.status_code == 400, r.text
        problem = r.json()
        assert problem["type"] == "urn:posesvc:problem:undecodable_image"
        assert "JPEG, PNG or WebP" in problem["detail"] and "pi_heif" not in problem["detail"]
    assert detected.status_code == 200, detected.text
    body = detected.json()
    assert body["boxes_source"] == "detector" and body["timings_ms"]["detect"] > 0
    card = base_estimator.card.name
    assert f'posesvc_stage_duration_seconds_count{{model="{card}",stage="detect"}} 1.0' in scrape.text


def test_missing_detector_weights_fail_fast_offline(tmp_path, monkeypatch):
    """A detector name that is not on disk is refused at once with the command that downloads it; nothing
    is fetched (before, Ultralytics looked the name up on GitHub from inside `serve`)."""
    from service.errors import WeightsError

    rec = Recorder(monkeypatch)
    with pytest.raises(WeightsError, match=re.escape("posesvc weights fetch --detector posesvc-absent-yolov8n.pt")):
        YoloPersonDetector(DetectorConfig(weights="posesvc-absent-yolov8n.pt", weights_dir=tmp_path))
    assert rec.calls == []
    # a file in the weights cache is found by name
    from service.pipeline.detector import resolve_detector_weights

    (tmp_path / "mine.pt").write_bytes(b"x")
    assert resolve_detector_weights("mine.pt", tmp_path) == str(tmp_path / "mine.pt")
    assert resolve_detector_weights("yolov8n.yaml", tmp_path) == "yolov8n.yaml"
