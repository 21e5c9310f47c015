"""CPU threads that share the machine: how many intra-op threads a backend may use, and no spin-waiting.

A process that takes one thread per host core and spins between kernels takes more than its share when it
is not alone (two replicas on a node, a pod whose CPU quota is below the node's core count). The budget is
the smallest of: the explicit setting (``POSESVC_CPU_THREADS``; the Helm chart passes the pod's CPU request
through the downward API), the cgroup CPU quota (``cpu.max`` of cgroup v2, ``cfs_quota_us / cfs_period_us``
of v1, rounded up), and the CPUs this process may run on (its affinity mask). Backends then run that many
intra-op threads and wait passively (torch: OpenMP ``OMP_WAIT_POLICY=PASSIVE``, set by ``service/cli`` before
torch loads; ONNX Runtime: ``session.intra_op.allow_spinning = 0``; OpenVINO: one stream of that many threads).
"""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path

_CGROUP = Path("/sys/fs/cgroup")


def _quota_v2(root: Path) -> float | None:
    try:
        quota, period = (root / "cpu.max").read_text().split()[:2]
    except (OSError, ValueError):
        return None
    return None if quota == "max" else int(quota) / int(period)


def _quota_v1(root: Path) -> float | None:
    try:
        quota = int((root / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((root / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota <= 0 or period <= 0 else quota / period


def cgroup_cpu_quota(root: Path = _CGROUP) -> float | None:
    """CPUs' worth of time the cgroup may use (e.g. ``1.5``), ``None`` when unlimited or unknown."""
    return _quota_v2(root) if (root / "cpu.max").exists() else _quota_v1(root)


def affinity_cpus() -> int:
    """CPUs in this process's affinity mask (all CPUs where the platform has no masks)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def cpu_thread_budget(setting: int | None = None, root: Path = _CGROUP) -> int:
    """Intra-op threads for one backend: ``min(setting, ceil(cgroup quota), affinity CPUs)``, at least 1."""
    candidates = [affinity_cpus()]
    quota = cgroup_cpu_quota(root)
    if quota is not None:
        candidates.append(max(1, math.ceil(quota - 1e-9)))
    if setting is not None and setting > 0:
        candidates.append(setting)
    return max(1, min(candidates))


def apply_torch_threads(n: int) -> None:
    """Size torch's intra-op pool to ``n`` (its inter-op pool to 1: the engine runs one forward at a time)."""
    import torch

    torch.set_num_threads(n)
    with contextlib.suppress(RuntimeError):  # already set, or parallel work has started: keep what is there
        torch.set_num_interop_threads(1)
