"""``posesvc bench``: load generator for a running server, or ``--micro`` benchmarks of the pipeline's pieces.

Examples::

    posesvc bench --url http://127.0.0.1:8000 --concurrency 1,2,4,8 --rates 2,4 --requests 100 --duration 20
    posesvc bench --url grpc://127.0.0.1:50051 --metrics-url http://127.0.0.1:8000 --no-client-boxes
    posesvc bench --micro --card hrnet_w32_256x192_darkpose --persons 8

See ``docs/BENCHMARKS.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
from pathlib import Path
from typing import Any

from ..errors import InvalidInput
from .common import add_model_args, build_estimator, default_output_dir, load_model_card, settings_from_args

DEFAULT_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "coco_samples"


def _ints(text: str) -> list[int]:
    return [int(v) for v in text.split(",") if v.strip()]


def _floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def register(sub: Any) -> None:
    p = sub.add_parser(
        "bench",
        help="load-test a running server (closed/open loop), or --micro benchmarks in-process",
        description="Load generator for a running posesvc server (loopback only unless --allow-remote), "
        "bounded per phase by --requests and --duration; or --micro: per-person timings of the pieces.",
    )
    p.add_argument("--micro", action="store_true", help="micro-benchmarks in-process instead of load")
    g = p.add_argument_group("load")
    g.add_argument("--url", help="target: http://host:port (REST) or grpc://host:port")
    g.add_argument("--metrics-url", help="HTTP base for /metrics (default: --url when it is http)")
    g.add_argument("--allow-remote", action="store_true", help="allow a non-loopback target")
    g.add_argument("--api-key")
    g.add_argument("--concurrency", type=_ints, default=[1, 2, 4, 8], help="closed-loop sweep, e.g. 1,2,4,8")
    g.add_argument("--rates", type=_floats, default=[], help="open-loop target rates in requests/s, e.g. 2,4")
    g.add_argument("--arrivals", choices=["poisson", "uniform"], default="poisson")
    g.add_argument("--requests", type=int, default=100, help="max requests per phase")
    g.add_argument("--duration", type=float, default=15.0, help="max seconds per phase")
    g.add_argument("--timeout", type=float, default=30.0, help="per-request timeout (s)")
    g.add_argument(
        "--data", type=Path, default=DEFAULT_DATA, help="image folder (default ../shared/data/coco_samples)"
    )
    g.add_argument(
        "--ann",
        type=Path,
        help="annotation file for client boxes (default: the one *.json in --data with 'images')",
    )
    g.add_argument(
        "--det", type=Path, help="take client boxes from this detection file instead of the ground truth"
    )
    g.add_argument("--no-client-boxes", action="store_true", help="send images only (the server detects)")
    g.add_argument("--no-flip", action="store_true", help="ask for no flip test")
    g.add_argument("--no-plots", action="store_true")
    m = p.add_argument_group("micro")
    add_model_args(m)
    m.add_argument("--persons", type=int, default=8, help="crops per batch")
    m.add_argument("--reps", type=int, default=5)
    m.add_argument("--decode-persons", type=int, default=64)
    m.add_argument("--precisions", type=lambda t: tuple(v for v in t.split(",") if v),
                   help="e.g. fp32,bf16 (default: fp32 on CPU, where bf16 is ~10x slower without AMX; "
                        "fp32,fp16 on CUDA)")  # fmt: skip
    m.add_argument("--no-loop-decode", action="store_true", help="skip the slow per-joint loop decoder")
    p.add_argument(
        "--out", type=Path, help="folder for JSON and plots (default: a new folder under ~/.cache/posesvc/runs)"
    )
    p.set_defaults(func=run)


def _default_ann(data: Path) -> Path | None:
    for f in sorted(data.glob("*.json")):
        if f.stat().st_size < 50_000_000:
            try:
                body = json.loads(f.read_text())
            except ValueError:
                continue
            if isinstance(body, dict) and "images" in body and "annotations" in body:
                return f
    return None


def hardware() -> dict[str, Any]:
    """Machine description for the report: CPU model, logical CPUs, torch version and threads, CUDA."""
    import os

    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu, "nproc": os.cpu_count(), "torch": torch.__version__, "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "python": platform.python_version(),
    }  # fmt: skip


def run(args: argparse.Namespace) -> int:
    if args.out is None:
        args.out = default_output_dir("bench-micro" if args.micro else "bench")
    return run_micro(args) if args.micro else run_loadgen(args)


def run_loadgen(args: argparse.Namespace) -> int:
    from ..loadgen.core import LoadConfig, load_samples, parse_target, run_load
    from ..schemas import PoseOptions

    if not args.url:
        raise InvalidInput("--url is required (or --micro)")
    target = parse_target(args.url, args.metrics_url, args.allow_remote)
    if not args.data.is_dir():
        raise InvalidInput(f"no image folder {args.data}")
    client_boxes = not args.no_client_boxes
    ann = args.ann or (_default_ann(args.data) if client_boxes else None)
    samples = load_samples(args.data, ann, args.det, client_boxes)
    cfg = LoadConfig(
        concurrency=args.concurrency, rates=args.rates, max_requests=args.requests,
        max_duration_s=args.duration, timeout_s=args.timeout, arrivals=args.arrivals,
        options=PoseOptions(flip=False if args.no_flip else None), api_key=args.api_key,
    )  # fmt: skip
    n_boxes = sum(len(s.boxes or []) for s in samples)
    print(f"target {target.url} ({target.transport}), {len(samples)} images"
          + (f", {n_boxes} client boxes" if client_boxes else ", server-side detection"), file=sys.stderr)  # fmt: skip
    header = f"{'phase':<12} {'sent':>5} {'ok':>5} {'rej':>4} {'err':>4} {'req/s':>7} {'pers/s':>8} {'p50 ms':>8} {'p90 ms':>8} {'p99 ms':>8}  batch img/crops"

    def show(s: dict[str, Any]) -> None:
        phase = f"c={s['concurrency']}" if s["mode"] == "closed" else f"{s['target_rps']:g} rps"
        lat = s["latency_ms"]
        b = s["batch_sizes"]
        bs = "/".join(str(b[u]["mean"]) if u in b else "-" for u in ("images", "crops"))

        def f(v: float | None) -> str:
            return "-" if v is None else f"{v:.1f}"

        print(f"{phase:<12} {s['sent']:>5} {s['ok']:>5} {s['rejected']:>4} {s['errors']:>4} "
              f"{s['requests_per_s']:>7.2f} {s['persons_per_s']:>8.2f} {f(lat['p50']):>8} {f(lat['p90']):>8} "
              f"{f(lat['p99']):>8}  {bs}", flush=True)  # fmt: skip

    print(header, flush=True)
    phases = asyncio.run(run_load(target, samples, cfg, on_phase=show))
    args.out.mkdir(parents=True, exist_ok=True)
    report = {
        "target": target.url, "transport": target.transport, "images": len(samples), "client_boxes": client_boxes,
        "client_box_count": n_boxes, "flip": not args.no_flip, "max_requests": args.requests,
        "max_duration_s": args.duration, "client_hardware": hardware(), "phases": [p.summary() for p in phases],
    }  # fmt: skip
    path = args.out / "load.json"
    path.write_text(json.dumps(report, indent=2))
    written = [path]
    if not args.no_plots:
        from ..loadgen.plots import plot_load

        written += plot_load(phases, args.out, f"posesvc bench {target.transport}")
    print("wrote " + ", ".join(str(w) for w in written), file=sys.stderr)
    return 0


def run_micro(args: argparse.Namespace) -> int:
    from ..loadgen.micro import format_rows, micro_bench

    s = settings_from_args(args)
    card = load_model_card(s)
    if card.kind != "topdown":
        raise InvalidInput(f"bench --micro measures the top-down stages: {card.name} is a bottom-up model")
    est = build_estimator(s, card, warn=False)
    hw = hardware()
    print(f"{card.name} on {est.device} ({'trained' if est.trained else 'random weights'}), "
          f"{args.persons} persons per batch, median of {args.reps}; {hw['cpu']}, {hw['nproc']} CPUs, "
          f"torch {hw['torch']} ({hw['torch_threads']} threads)", flush=True)  # fmt: skip

    def progress(step: str) -> None:
        print(f"  ... {step}", file=sys.stderr, flush=True)

    try:
        rows = micro_bench(est, args.persons, args.reps, args.decode_persons, args.precisions,
                           loop_decode=not args.no_loop_decode, progress=progress)  # fmt: skip
    except ValueError as exc:
        raise InvalidInput(str(exc)) from None
    print(format_rows(rows))
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "micro.json"
    path.write_text(json.dumps({"card": card.name, "device": str(est.device), "persons": args.persons,
                                "reps": args.reps, "hardware": hw, "rows": [r.to_dict() for r in rows]}, indent=2))  # fmt: skip
    print(f"wrote {path}", file=sys.stderr)
    return 0
