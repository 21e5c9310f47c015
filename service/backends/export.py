"""One export: a card's network as ONNX with a dynamic batch axis, checked against torch, cached by content.

The file holds the family's outputs (heatmaps first; the Hourglass exports only its last stack), exported
with torch's TorchScript-based exporter at opset :data:`OPSET` (HRNet, SimpleBaseline and both Hourglass
forwards export with it; max |diff| vs torch ~1e-7 to 3e-6 on random inputs).

Cache: ``<cache_dir>/<model>-<key16>.onnx`` plus a ``.json`` record of the full key and the file's sha256.
The key covers everything that changes the graph: the network's weights (a digest of the state dict: the
checkpoint, or the card-seeded untrained weights), the card's architecture, parameters and input size, the
torch version and the opset. A file whose record is missing, whose key differs, or whose bytes no longer
match their sha256 is exported again, never served.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..nets._registry import as_tuple, entry_of

log = logging.getLogger(__name__)

OPSET = 17
INPUT_NAME = "input"


@dataclass(frozen=True)
class ExportSpec:
    """What an exporting backend needs to know beyond the module.

    Attributes:
        model_name: the card's name (file names, logs).
        model_key: the card's architecture, parameters and input size, canonical JSON (part of the cache key).
        input_size: ``(W_in, H_in)`` px.
        cache_dir: where exported files are kept (``None``: a fresh temporary folder per process).
        max_batch: the largest batch the engine sends (flip included): TensorRT profiles are sized to it.
    """

    model_name: str
    model_key: str
    input_size: tuple[int, int]
    cache_dir: Path | None = None
    max_batch: int = 64


class _FamilyOutputs(nn.Module):
    """The family's output adapter inside the graph: what the backends return is what torch returns."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net
        entry = entry_of(net)
        self._outputs = entry.outputs if entry is not None else as_tuple

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        return tuple(self._outputs(self.net(x)))


def torch_outputs(net: nn.Module, x: Tensor) -> tuple[Tensor, ...]:
    """The family's outputs of ``net`` (eval mode, fp32) for ``x``."""
    with torch.inference_mode():
        return tuple(t.float() for t in _FamilyOutputs(net.eval())(x))


def network_digest(net: nn.Module) -> str:
    """sha256 over the state dict (names, dtypes, shapes, bytes, in order)."""
    h = hashlib.sha256()
    for name, t in net.state_dict().items():
        v = t.detach().cpu().contiguous()
        h.update(f"{name}|{v.dtype}|{tuple(v.shape)}|".encode())
        h.update(v.numpy().tobytes() if v.dtype != torch.bfloat16 else v.float().numpy().tobytes())
    return h.hexdigest()


def export_key(net: nn.Module, spec: ExportSpec) -> str:
    payload = {"weights": network_digest(net), "model": spec.model_key, "input_size": list(spec.input_size),
               "torch": torch.__version__, "opset": OPSET, "exporter": "torchscript"}  # fmt: skip
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def export_onnx(net: nn.Module, input_size: tuple[int, int], out: Path) -> list[str]:
    """Write ``net`` (CPU, eval, fp32) as ONNX with a dynamic batch axis; returns the output names.
    Written to a temporary file and renamed, so a crash never leaves a half file under ``out``."""
    w, h = input_size
    module = _FamilyOutputs(net).eval().cpu().float()
    example = torch.zeros(2, 3, h, w)
    with torch.inference_mode():
        n_out = len(module(example))
    names = [f"output{i}" for i in range(n_out)]
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=out.name + ".", suffix=".part", dir=out.parent)
    os.close(fd)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter's deprecation notices
            torch.onnx.export(
                module, (example,), tmp, input_names=[INPUT_NAME], output_names=names,
                dynamic_axes={INPUT_NAME: {0: "batch"}, **{n: {0: "batch"} for n in names}},
                opset_version=OPSET, dynamo=False,
            )  # fmt: skip
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return names


def onnx_max_diff(path: Path, net: nn.Module, input_size: tuple[int, int], batch: int = 3, seed: int = 0) -> float:
    """Max |ONNX Runtime − torch| over every output on a random batch (a batch size other than the
    export's example, so the dynamic axis is exercised)."""
    import onnxruntime as ort

    w, h = input_size
    x = torch.from_numpy(np.random.default_rng(seed).standard_normal((batch, 3, h, w)).astype(np.float32))
    ref = torch_outputs(net.cpu(), x)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {INPUT_NAME: x.numpy()})
    return max(float(np.abs(g - r.numpy()).max()) for g, r in zip(got, ref, strict=True))


def _cache_dir(spec: ExportSpec) -> Path:
    if spec.cache_dir is not None:
        return Path(spec.cache_dir)
    return Path(tempfile.mkdtemp(prefix="posesvc-export-"))


def cached_onnx(net: nn.Module, spec: ExportSpec, *, check: bool = True) -> tuple[Path, dict[str, Any]]:
    """The exported file for ``net`` (exported now if missing, stale or corrupt) and its record
    (``key``, ``sha256``, ``max_diff`` vs torch, ``seconds`` to export)."""
    key = export_key(net, spec)
    folder = _cache_dir(spec)
    path = folder / f"{spec.model_name}-{key[:16]}.onnx"
    meta_path = path.with_suffix(".json")
    reason = "not exported yet"
    if path.is_file() and meta_path.is_file():
        try:
            meta = json.loads(meta_path.read_text())
            if meta.get("key") != key:
                reason = "exported for other weights or settings"
            elif meta.get("sha256") != file_sha256(path):
                reason = "file corrupt (sha256 mismatch)"
            else:
                return path, meta
        except (OSError, ValueError) as exc:
            reason = f"unreadable record ({exc})"
    elif path.is_file():
        reason = "no record next to the file"
    log.info("exporting %s to ONNX (%s): %s", spec.model_name, reason, path)
    t0 = time.perf_counter()
    names = export_onnx(net, spec.input_size, path)
    meta = {"key": key, "sha256": file_sha256(path), "model": spec.model_name, "opset": OPSET,
            "input_size": list(spec.input_size), "outputs": names, "torch": torch.__version__,
            "seconds": round(time.perf_counter() - t0, 2)}  # fmt: skip
    if check:
        meta["max_diff"] = onnx_max_diff(path, net, spec.input_size)
    tmp = meta_path.with_suffix(".json.part")
    tmp.write_text(json.dumps(meta, indent=2))
    os.replace(tmp, meta_path)
    return path, meta
