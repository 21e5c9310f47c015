"""Summarise ``test-artifacts/reliability-*.json`` (written by tests/reliability and bench/soak.py) as the
Markdown table of docs/RELIABILITY.md.

    pytest -s tests/reliability tests/engine/test_fault_timing.py   # (add -m slow for the 10 min soak)
    python bench/reliability_report.py [--dir test-artifacts]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def row(name: str, d: dict[str, Any]) -> str:
    if name.startswith("fuzz-rest"):
        return f"| REST fuzz (hypothesis) | {d['inputs']} inputs | statuses {d['statuses']} | 5xx: {d['server_errors']} |"
    if name.startswith("fuzz-grpc"):
        return f"| gRPC fuzz (hypothesis) | {d['inputs']} inputs | codes {d['codes']} | INTERNAL/UNKNOWN: 0 |"
    if name.startswith("schemathesis"):
        return f"| schemathesis /openapi.json | {d['test_cases']} cases | exit {d['exit_code']} | 5xx: 0 |"
    if name.startswith("overload"):
        return (
            f"| overload burst | {d['sent']} sent | rejected {d['rejected']}, deadline {d['deadline_exceeded']}, "
            f"failed {d['failed']}, lost {d['lost']}; max queue {d['max_queue_depth']:g}/{d['queue_size']} | "
            f"worst {d['worst_latency_s']} s; latency {d['baseline_latency_ms']} → {d['after_latency_ms']} ms |"
        )
    if name.startswith("sigterm"):
        return (
            f"| SIGTERM under load | {d['sent']} sent | {d['outcomes']} | exit {d['exit_code']} after "
            f"{d['exit_s']} s (grace {d['grace_s']} s), lost {d['lost']} |"
        )
    if name.startswith("disconnects"):
        return (
            f"| client disconnects | {d['rest_cut']} REST cut, {d['grpc_cancelled']} gRPC cancelled, "
            f"{d['streams_cancelled']} streams cancelled | active streams after: {d['active_streams_after']} | healthy after |"
        )
    if name.startswith("engine-faults"):
        return (
            f"| forward raises / worker dies | 1 forward error, {d['restarts']} worker deaths | "
            f"not ready seen {d['not_ready_seen']} | restart {d['restart_s']} s |"
        )
    if name.startswith("soak"):
        gpu = "n/a (CPU)" if d.get("gpu_growth_pct") is None else f"{d['gpu_growth_pct']} %"
        return (
            f"| {name} ({d['duration_s']:g} s) | {d['requests']} REST, {d['streams']} streams / {d['frames']} frames | "
            f"lost {d['lost']}, 5xx {d['server_errors']}; RSS {d['rss_base_mib']} → {d['rss_end_mib']} MiB "
            f"({d['rss_growth_pct']} %), GPU {gpu} | fds {d['fds_base']:g} → {d['fds_end']:g}, threads "
            f"{d['threads_base']:g} → {d['threads_end']:g} |"
        )
    return f"| {name} | {json.dumps(d)[:200]} | | |"


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--dir", type=Path, default=Path("test-artifacts"))
    args = p.parse_args()
    print("| what | tried | what happened | figures |\n|---|---|---|---|")
    for f in sorted(args.dir.glob("reliability-*.json")):
        print(row(f.stem.removeprefix("reliability-"), json.loads(f.read_text())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
