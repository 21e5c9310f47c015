"""Choosing the backend a model is served through, and checking it against torch before it serves.

``auto`` takes the fastest backend installed for the device: on CPU the faster of ONNX Runtime and OpenVINO,
timed on the model at start-up (HRNet-W32: ONNX Runtime 1.7x eager torch on a 2-core AVX2 EPYC; on an AVX-512
Xeon ONNX Runtime 1.44x and OpenVINO 1.60x; same numbers to ~1e-6), on CUDA TensorRT (fp16 engine) when ONNX
Runtime has its TensorRT provider, else torch (with bf16 asked for, torch: the exported backends are fp32).
Whichever is chosen must pass a start-up check: its outputs on a random batch equal torch's within
:func:`tolerance`. Under ``auto`` a backend that is missing or fails falls back to torch, and the reason is
kept in :attr:`Selected.note` (logged, and shown by ``/v1/models``); a backend asked for by name that cannot
run raises :class:`BackendUnavailable` with one line naming it and the fix.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from .base import Backend, BackendOptions, BackendUnavailable, load_backend
from .export import torch_outputs

log = logging.getLogger(__name__)

CHOICES: tuple[str, ...] = ("auto", "torch", "onnxruntime", "openvino", "tensorrt")


@dataclass(frozen=True)
class Selected:
    """The backend serving a model, its start-up check and why it is the one (``note``: a fallback's reason)."""

    backend: Backend
    max_diff: float
    note: str = ""


def installed(name: str) -> bool:
    module = {"onnxruntime": "onnxruntime", "tensorrt": "onnxruntime", "openvino": "openvino"}.get(name)
    return module is None or importlib.util.find_spec(module) is not None


def auto_candidates(device: torch.device, options: BackendOptions) -> list[str]:
    """The backends ``auto`` tries (torch is the fallback of them all); on CPU the faster of the exported
    runtimes is kept (:func:`fastest`): which one wins depends on the CPU (ONNX Runtime on a 2-core AVX2 EPYC,
    OpenVINO on an AVX-512 Xeon, measured)."""
    if options.precision == "bf16" or options.export is None:
        return []
    if device.type == "cuda":
        return ["tensorrt"]
    return ["onnxruntime", "openvino"] if options.precision == "fp32" else []


def fastest(candidates: list[Selected], input_size: tuple[int, int], crops: int = 8, rounds: int = 3) -> tuple[Selected, str]:
    """Time the candidates' forward on the same random batch of ``crops`` (one warm-up each, then ``rounds``
    interleaved rounds; the median); return the fastest and a one-line account of the measurement."""
    import time

    w, h = input_size
    x = torch.from_numpy(np.random.default_rng(2).standard_normal((crops, 3, h, w)).astype(np.float32))
    times: list[list[float]] = [[] for _ in candidates]
    for c in candidates:
        c.backend.forward(x.to(c.backend.device))
    for _ in range(rounds):
        for i, c in enumerate(candidates):
            time.sleep(0.05)  # let the previous runtime's worker threads go idle
            t0 = time.perf_counter()
            c.backend.forward(x.to(c.backend.device))
            times[i].append(time.perf_counter() - t0)
    med = [float(np.median(t)) for t in times]
    order = sorted(range(len(candidates)), key=lambda i: med[i])
    best, runner_up = order[0], order[1]
    names = [c.backend.name for c in candidates]
    account = (f"{names[best]} chosen: {med[runner_up] / med[best]:.2f}x {names[runner_up]} at start-up "
               f"({crops} crops: " + ", ".join(f"{n} {m * 1000:.0f} ms" for n, m in zip(names, med, strict=True)) + ")")  # fmt: skip
    return candidates[best], account


def tolerance(name: str, options: BackendOptions) -> float:
    """Allowed max |backend − torch fp32| relative to max(1, max |torch|): fp32 runtimes differ by ~1e-6
    (kernel order); fp16 engines by ~1e-3."""
    return 2e-2 if options.precision == "fp16" or name == "tensorrt" else 1e-3


def check(backend: Backend, net: nn.Module, input_size: tuple[int, int], options: BackendOptions) -> float:
    """Run a random batch of 2 through ``backend`` and through ``net`` in torch fp32 (CPU); raise
    :class:`BackendUnavailable` unless every output agrees within :func:`tolerance`. Returns the max diff."""
    w, h = input_size
    x = torch.from_numpy(np.random.default_rng(1).standard_normal((2, 3, h, w)).astype(np.float32))
    ref = torch_outputs(net, x.to(next(net.parameters()).device))
    got = backend.forward(x.to(backend.device))
    if len(got) != len(ref):
        raise BackendUnavailable(f"backend {backend.name} returned {len(got)} outputs, torch {len(ref)}")
    worst = 0.0
    for g, r in zip(got, ref, strict=True):
        if g.shape != r.shape:
            raise BackendUnavailable(f"backend {backend.name}: output shape {tuple(g.shape)} != torch {tuple(r.shape)}")
        r = r.float().cpu()
        diff = float((g.float().cpu() - r).abs().max())
        if not np.isfinite(diff) or diff > tolerance(backend.name, options) * max(1.0, float(r.abs().max())):
            raise BackendUnavailable(
                f"backend {backend.name} failed its start-up check against torch: max |diff| {diff:.3g}"
            )
        worst = max(worst, diff)
    return worst


def select_backend(name: str, net: nn.Module, device: torch.device, options: BackendOptions) -> Selected:
    """Load backend ``name`` (or resolve ``auto``) for ``net`` on ``device`` and check it against torch.

    Raises:
        BackendUnavailable: ``name`` is not ``auto`` and cannot run here, or fails the check.
        ValueError: unknown name.
    """
    if name not in CHOICES:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(CHOICES)}")
    input_size = options.export.input_size if options.export is not None else None
    if name != "auto":
        if not installed(name):
            pkg = {"openvino": "openvino", "onnxruntime": "onnxruntime", "tensorrt": "onnxruntime-gpu"}[name]
            raise BackendUnavailable(
                f"backend {name} is not installed: pip install {pkg}, or set POSESVC_MODEL__BACKEND=torch"
            )
        backend = load_backend(name, net, device, options)
        diff = 0.0
        if name != "torch" and input_size is not None:
            diff = check(backend, net, input_size, options)
        return Selected(backend, diff)
    notes: list[str] = []
    passed: list[Selected] = []
    for cand in auto_candidates(device, options):
        if not installed(cand):
            notes.append(f"{cand} is not installed")
            continue
        try:
            backend = load_backend(cand, net, device, options)
            assert input_size is not None
            passed.append(Selected(backend, check(backend, net, input_size, options)))
        except Exception as exc:  # any failure of an optional backend falls back to torch
            notes.append(f"{cand} unavailable ({' '.join(str(exc).split())})")
    if len(passed) == 1:
        return Selected(passed[0].backend, passed[0].max_diff, "; ".join(notes))
    if passed:
        assert input_size is not None
        best, timing = fastest(passed, input_size)
        log.info("backend auto: %s", timing)
        return Selected(best.backend, best.max_diff, "; ".join([*notes, timing]))
    note = "; ".join(notes)
    if note:
        log.warning("backend auto: %s; serving with torch", note)
    return Selected(load_backend("torch", net, device, options), 0.0, note)
