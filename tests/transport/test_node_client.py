"""The Node.js gRPC client (``clients/node``) against a live server: ``Estimate`` and ``StreamEstimate`` give the
keypoints the Python client gets, and ``ListModels`` lists the served model."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from service.client.grpc_client import GrpcPoseClient, StreamFrame
from service.pipeline.image import decode_image
from service.streaming.session import StreamOptions

NODE_DIR = Path(__file__).resolve().parents[2] / "clients" / "node"
BOX = [[60.0, 40.0, 180.0, 260.0]]


def _node(*args: str) -> object:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node not installed (Node.js >= 18)")
    if not (NODE_DIR / "node_modules" / "@grpc" / "grpc-js").is_dir():
        pytest.fail("clients/node dependencies missing: run .ci/install-deploy-tools.sh (npm ci in clients/node)")
    out = subprocess.run([node, str(NODE_DIR / "cli.js"), *args], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _kpts(persons: list[dict]) -> np.ndarray:
    return np.array([[[k["x"], k["y"], k["score"]] for k in p["keypoints"]] for p in persons], dtype=np.float64)


def test_node_client_estimate_stream_and_models(server, coco_jpeg, tmp_path: Path) -> None:
    image = tmp_path / "photo.jpg"
    image.write_bytes(coco_jpeg)
    py = GrpcPoseClient(server.grpc)
    try:
        ref = py.estimate(coco_jpeg, boxes=BOX)
        rgb = decode_image(coco_jpeg)
        frames = [StreamFrame(i, rgb, BOX if i == 0 else None, i / 10) for i in range(3)]
        ref_stream = [a.result for a in py.stream(frames, StreamOptions(detect_every=100))]
    finally:
        py.close()
    got = _node("estimate", "--target", server.grpc, "--image", str(image), "--boxes", json.dumps(BOX))
    assert isinstance(got, dict) and got["model"]["name"] == ref.model
    ref_k = np.stack([p.keypoints for p in ref.persons]).astype(np.float32).astype(np.float64)
    np.testing.assert_array_equal(_kpts(got["persons"]), ref_k)  # the same float32 values on the wire
    answers = _node("stream", "--target", server.grpc, "--image", str(image), "--frames", "3",
                    "--boxes", json.dumps(BOX), "--detect-every", "100")  # fmt: skip
    assert isinstance(answers, list) and [a["frame_id"] for a in answers] == [0, 1, 2]
    for a, r in zip(answers, ref_stream, strict=True):
        assert a["outcome"] == "PROCESSED" and r is not None
        ref_a = np.stack([p.keypoints for p in r.persons]).astype(np.float32).astype(np.float64)
        np.testing.assert_allclose(_kpts(a["result"]["persons"]), ref_a, atol=1e-4)
        assert [p["track_id"] for p in a["result"]["persons"]] == [p.track_id for p in r.persons]
    models = _node("models", "--target", server.grpc)
    assert isinstance(models, list) and models[0]["name"] == ref.model and models[0]["is_default"] is True
