"""``posesvc export`` and the export cache: a dynamic batch axis, the family's outputs (the Hourglass's last
stack only), agreement with torch, and a cache that rebuilds a stale or corrupt file instead of serving it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from service.backends.export import ExportSpec, cached_onnx, file_sha256, torch_outputs
from service.cli.main import main
from service.nets import build_net
from service.pipeline.card import load_card


def _spec(card, tmp: Path) -> ExportSpec:
    return ExportSpec(card.name, json.dumps({"a": card.architecture, "p": card.arch_params}, default=str),
                      card.input_size, tmp)  # fmt: skip


@pytest.mark.parametrize("card_name", ["pose_resnet_50_128x96_darkpose", "hourglass_4_128x96_darkpose"])
def test_families_export_with_a_dynamic_batch(card_name: str, tmp_path: Path) -> None:
    card = load_card(card_name)
    net = build_net(card.architecture, card.arch_params, seed_key=card.name).eval()
    path, meta = cached_onnx(net, _spec(card, tmp_path))
    assert meta["max_diff"] < 1e-4 and meta["outputs"] == ["output0"]
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    w, h = card.input_size
    for batch in (1, 5):
        x = torch.from_numpy(np.random.default_rng(batch).standard_normal((batch, 3, h, w)).astype(np.float32))
        (got,) = sess.run(None, {"input": x.numpy()})
        (ref,) = torch_outputs(net, x)  # the Hourglass: only its last stack, as the estimator decodes
        assert got.shape == (batch, 17, h // 4, w // 4)
        np.testing.assert_allclose(got, ref.numpy(), atol=1e-4, rtol=0)


def test_cache_reuses_and_rebuilds(small_card, small_net_fresh, tmp_path: Path) -> None:
    spec = _spec(small_card, tmp_path)
    path, meta = cached_onnx(small_net_fresh, spec)
    stamp = path.stat().st_mtime_ns
    again, meta2 = cached_onnx(small_net_fresh, spec)
    assert again == path and again.stat().st_mtime_ns == stamp and meta2["sha256"] == meta["sha256"]
    # a corrupt file (bytes changed after export) is exported again, never served
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    fixed, meta3 = cached_onnx(small_net_fresh, spec)
    assert fixed == path and file_sha256(path) == meta3["sha256"] == meta["sha256"]
    # a record for other weights is not trusted either
    record = path.with_suffix(".json")
    record.write_text(json.dumps({**json.loads(record.read_text()), "key": "0" * 64}))
    cached_onnx(small_net_fresh, spec)
    assert json.loads(record.read_text())["key"] != "0" * 64
    # other weights: another key, another file
    with torch.no_grad():
        next(small_net_fresh.parameters()).add_(1.0)
    other, _ = cached_onnx(small_net_fresh, spec)
    assert other != path and other.is_file()


def test_export_cli(small_card_path: Path, small_weights: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("POSESVC_WEIGHTS_DIR", str(tmp_path / "weights"))
    out = tmp_path / "small.onnx"
    args = ["export", "--card", str(small_card_path), "--weights", str(small_weights), "--out", str(out), "--json"]
    assert main(args) == 0
    record = json.loads(capsys.readouterr().out)
    assert out.is_file() and file_sha256(out) == record["sha256"] and record["max_diff"] < 1e-4
    assert record["trained"] is True and Path(record["path"]).parent == tmp_path / "weights" / "exports"
