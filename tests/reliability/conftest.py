"""Reliability suite helpers: live ``posesvc serve`` subprocesses (tests/transport/conftest.py), a small valid
JPEG, raw gRPC stubs, /proc sampling and a JSON summary writer for ``test-artifacts/``."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import grpc
import pytest

from bench.soak import _jpeg as soak_jpeg
from bench.soak import proc_sample
from service.transport.grpc.gen.posesvc.v1 import pose_pb2, pose_pb2_grpc
from tests.transport.conftest import REPO, Server, start_server, stop_server

ARTIFACTS = Path(os.environ.get("POSESVC_TEST_ARTIFACTS", REPO / "test-artifacts"))
BOX = [[100.0, 50.0, 200.0, 300.0, 0.9]]


def write_summary(name: str, data: dict[str, Any]) -> Path:
    """Record measured figures (tests/reliability → test-artifacts/reliability-<name>.json)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    p = ARTIFACTS / f"reliability-{name}.json"
    p.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    print(f"\n[reliability:{name}] " + json.dumps(data, sort_keys=True))
    return p


def small_jpeg(w: int = 320, h: int = 400, seed: int = 0) -> bytes:
    """A random-noise JPEG (the soak benchmark's payload generator)."""
    return soak_jpeg(w, h, seed)


def stub(target: str, creds: grpc.ChannelCredentials | None = None) -> tuple[grpc.Channel, Any]:
    opts = [("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)]
    ch = (
        grpc.secure_channel(target, creds, options=opts)
        if creds is not None
        else grpc.insecure_channel(target, options=opts)
    )
    return ch, pose_pb2_grpc.PoseServiceStub(ch)


def estimate_request(image: bytes, boxes: list[list[float]] | None = BOX) -> Any:
    req = pose_pb2.EstimateRequest(image=image, options=pose_pb2.PoseOptions(flip=False))
    if boxes is not None:
        req.use_boxes = True
        for b in boxes:
            req.boxes.add(x=b[0], y=b[1], w=b[2], h=b[3])
    return req


def self_signed(tmp: Path) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for 127.0.0.1/localhost (openssl CLI)."""
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
         "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="session")
def rel_server(tmp_path_factory, small_card_path, small_weights):
    """A plain server (the transport suite's small limits: queue 4, 64 boxes, 2 MiB images)."""
    srv = start_server(tmp_path_factory.mktemp("rel"), small_card_path, small_weights)
    yield srv
    stop_server(srv)


__all__ = ["BOX", "Server", "estimate_request", "proc_sample", "small_jpeg", "stub", "write_summary"]
