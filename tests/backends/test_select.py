"""Backend choice: ``auto`` serves through ONNX Runtime on this CPU; a backend that is missing or fails its
start-up check against torch falls back under ``auto`` (saying why) and stops the start with one line when it
was asked for by name; thread budgets follow the cgroup quota, the affinity mask and the setting."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from service.backends import select as sel
from service.backends.threads import cgroup_cpu_quota, cpu_thread_budget
from service.errors import BackendError
from service.pipeline.estimator import PoseEstimator


def test_auto_takes_the_faster_exported_runtime_on_cpu(small_card, small_weights, tmp_path: Path) -> None:
    est = PoseEstimator.from_card(small_card, small_weights, backend="auto", export_dir=tmp_path)
    assert est.backend.name in ("onnxruntime", "openvino") and 0 < est.backend_max_diff < 1e-4
    other = "openvino" if est.backend.name == "onnxruntime" else "onnxruntime"
    assert est.backend_note.startswith(f"{est.backend.name} chosen: ") and f"x {other} at start-up" in est.backend_note
    assert est.backend.threads >= 1  # type: ignore[attr-defined]


def test_fastest_picks_the_quicker_backend() -> None:
    """:func:`fastest` on two stand-ins whose forward takes 1 ms and 20 ms (independent of any runtime)."""
    import time as _time

    class Slow:
        def __init__(self, name: str, seconds: float) -> None:
            self.name, self.seconds, self.device = name, seconds, torch.device("cpu")

        def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
            _time.sleep(self.seconds)
            return (x,)

    cands = [sel.Selected(Slow("slow", 0.02), 0.0), sel.Selected(Slow("quick", 0.001), 0.0)]  # type: ignore[arg-type]
    best, account = sel.fastest(cands, (8, 8), crops=1, rounds=2)
    assert best.backend.name == "quick" and account.startswith("quick chosen: ") and "x slow" in account


@pytest.mark.parametrize("name", ["onnxruntime", "openvino"])
def test_named_backends_pass_their_check(name: str, small_card, small_weights, tmp_path: Path) -> None:
    est = PoseEstimator.from_card(small_card, small_weights, backend=name, export_dir=tmp_path)
    assert est.backend.name == name and est.backend_max_diff < 1e-4


def test_missing_backend(monkeypatch, small_card, small_weights, tmp_path: Path) -> None:
    monkeypatch.setattr(sel, "installed", lambda name: name == "torch")
    with pytest.raises(BackendError, match=r"backend openvino is not installed: pip install openvino"):
        PoseEstimator.from_card(small_card, small_weights, backend="openvino", export_dir=tmp_path)
    est = PoseEstimator.from_card(small_card, small_weights, backend="auto", export_dir=tmp_path)
    assert est.backend.name == "torch" and est.backend_note == "onnxruntime is not installed; openvino is not installed"


def test_failed_check_falls_back_under_auto_and_stops_a_named_backend(
    monkeypatch, small_card, small_weights, tmp_path: Path
) -> None:
    real = sel.torch_outputs
    monkeypatch.setattr(sel, "torch_outputs", lambda net, x: tuple(t + 1.0 for t in real(net, x)))
    est = PoseEstimator.from_card(small_card, small_weights, backend="auto", export_dir=tmp_path)
    assert est.backend.name == "torch" and "failed its start-up check against torch" in est.backend_note
    with pytest.raises(BackendError, match=r"model darkpose_small_fixture: backend onnxruntime failed its start-up"):
        PoseEstimator.from_card(small_card, small_weights, backend="onnxruntime", export_dir=tmp_path)


def test_bf16_keeps_torch_and_tensorrt_needs_cuda(small_card, small_weights, tmp_path: Path) -> None:
    from service.pipeline.estimator import EstimatorConfig

    est = PoseEstimator.from_card(small_card, small_weights, backend="auto", export_dir=tmp_path,
                                  config=EstimatorConfig(precision="bf16"))  # fmt: skip
    assert est.backend.name == "torch"
    if not torch.cuda.is_available():
        with pytest.raises(BackendError, match="tensorrt"):
            PoseEstimator.from_card(small_card, small_weights, backend="tensorrt", export_dir=tmp_path)


def test_thread_budget(tmp_path: Path) -> None:
    (tmp_path / "cpu.max").write_text("150000 100000\n")
    assert cgroup_cpu_quota(tmp_path) == 1.5
    assert cpu_thread_budget(None, tmp_path) == min(2, _cpus())
    assert cpu_thread_budget(1, tmp_path) == 1
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert cgroup_cpu_quota(tmp_path) is None
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("50000")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000")
    assert cgroup_cpu_quota(v1) == 0.5 and cpu_thread_budget(None, v1) == 1
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1")
    assert cgroup_cpu_quota(v1) is None and cpu_thread_budget(64, v1) == _cpus()


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0))
