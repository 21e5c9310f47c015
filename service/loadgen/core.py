"""Load generator for a running posesvc server (REST via ``httpx.AsyncClient``, gRPC via ``grpc.aio``).

Two loops, both bounded by a request count AND a duration (whichever comes first):

* closed loop: ``concurrency`` workers, each sends its next request when the previous one answered;
* open loop: requests start at a target rate (Poisson or uniform arrivals) whatever the answers; latency
  is measured from the *scheduled* start, so a server that falls behind shows it (no coordinated omission).

Every request ends as exactly one of ``ok``, ``rejected`` (HTTP 429 / gRPC ``RESOURCE_EXHAUSTED``: the
server shed load) or ``error`` (anything else, timeouts and connection failures included), so
``ok + rejected + errors == sent`` always holds. Targets must be loopback unless explicitly allowed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import random
import socket
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import numpy as np

from ..errors import InvalidInput
from ..schemas import PoseOptions
from .prom import batch_deltas

Outcome = Literal["ok", "rejected", "error"]


class RemoteTargetRefused(InvalidInput):
    """The load target is not a loopback address and ``allow_remote`` was not given."""

    code = "remote_target_refused"


# ------------------------------------------------------------------------------------------------ target
@dataclass(frozen=True)
class Target:
    """Where to send load. ``transport`` is ``rest`` (``http://host:port``) or ``grpc`` (``grpc://host:port``);
    ``metrics_url`` is the HTTP base whose ``/metrics`` is scraped (``None``: no batch-size report)."""

    url: str
    transport: Literal["rest", "grpc"]
    host: str
    port: int
    metrics_url: str | None


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(str(i[4][0]).split("%")[0]).is_loopback for i in infos)


def parse_target(url: str, metrics_url: str | None = None, allow_remote: bool = False) -> Target:
    """Check and split a target URL.

    Raises:
        InvalidInput: unsupported scheme or missing port.
        RemoteTargetRefused: the host (or the metrics host) is not loopback and not ``allow_remote``.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https", "grpc") or not parts.hostname:
        raise InvalidInput(f"unsupported target {url!r}: use http://host:port or grpc://host:port")
    port = parts.port or (443 if parts.scheme == "https" else 80 if parts.scheme == "http" else 0)
    if not port:
        raise InvalidInput(f"target {url!r} needs a port")
    transport: Literal["rest", "grpc"] = "grpc" if parts.scheme == "grpc" else "rest"
    if metrics_url is None and transport == "rest":
        metrics_url = f"{parts.scheme}://{parts.netloc}"
    hosts = [parts.hostname] + ([urlsplit(metrics_url).hostname or ""] if metrics_url else [])
    for h in hosts:
        if not allow_remote and not _is_loopback(h):
            raise RemoteTargetRefused(
                f"refusing to send load to non-loopback host {h!r}; pass --allow-remote if you mean it"
            )
    return Target(
        url.rstrip("/"), transport, parts.hostname, port, metrics_url.rstrip("/") if metrics_url else None
    )


# ---------------------------------------------------------------------------------------------- workload
@dataclass(frozen=True)
class Sample:
    """One request body: encoded image bytes and optional client boxes ``[[x, y, w, h, score], ...]`` px."""

    name: str
    image: bytes
    boxes: list[list[float]] | None


def load_samples(
    image_dir: str | Path, ann_file: str | Path | None = None, det_file: str | Path | None = None,
    client_boxes: bool = True, limit: int | None = None,
) -> list[Sample]:  # fmt: skip
    """Real images from ``image_dir`` (``*.jpg``/``*.png``, sorted); with ``client_boxes``, their person boxes
    from ``det_file`` (detections) or else ``ann_file`` (ground truth), matched by the annotation's
    ``file_name``. Without ``client_boxes`` the server's detector finds the persons."""
    root = Path(image_dir)
    files = sorted(p for p in root.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))[:limit]
    if not files:
        raise InvalidInput(f"no .jpg/.png images in {root}")
    if not client_boxes:
        return [Sample(p.name, p.read_bytes(), None) for p in files]
    if ann_file is None:
        raise InvalidInput("client boxes need an annotation file (--ann) to map file names to image ids")
    from ..evaluation.coco import detection_boxes, ground_truth_boxes, load_coco

    coco = load_coco(ann_file)
    by_name = {im["file_name"]: int(im["id"]) for im in coco.dataset["images"]}
    ids = [by_name[p.name] for p in files if p.name in by_name]
    boxes = detection_boxes(det_file, ids) if det_file is not None else ground_truth_boxes(coco, ids)
    out = []
    for p in files:
        if p.name in by_name:
            b: np.ndarray = boxes[by_name[p.name]]
            out.append(Sample(p.name, p.read_bytes(), [[float(v) for v in r] for r in b]))
    if not out:
        raise InvalidInput(f"none of the images in {root} is in {ann_file}")
    return out


# --------------------------------------------------------------------------------------------- transports
Send = Callable[[Sample], Awaitable[tuple[Outcome, int, str | None]]]


class _Rest:
    def __init__(self, target: Target, options: PoseOptions, timeout_s: float, api_key: str | None) -> None:
        import httpx

        headers = {"X-API-Key": api_key} if api_key else {}
        limits = httpx.Limits(max_connections=1024, max_keepalive_connections=1024)
        self.http = httpx.AsyncClient(base_url=target.url, headers=headers, timeout=timeout_s, limits=limits)
        self.fields: dict[str, str] = {}
        if options.flip is not None:
            self.fields["flip"] = "true" if options.flip else "false"

    async def send(self, s: Sample) -> tuple[Outcome, int, str | None]:
        data = dict(self.fields)
        if s.boxes is not None:
            data["boxes"] = json.dumps(s.boxes)
        r = await self.http.post("/v1/pose", files={"image": (s.name, s.image)}, data=data)
        if r.status_code == 200:
            return "ok", len(r.json()["persons"]), None
        return ("rejected" if r.status_code == 429 else "error"), 0, f"http_{r.status_code}"

    async def close(self) -> None:
        await self.http.aclose()


class _Grpc:
    def __init__(self, target: Target, options: PoseOptions, timeout_s: float, api_key: str | None) -> None:
        import grpc

        from ..transport.grpc.gen.posesvc.v1 import pose_pb2_grpc

        self.grpc = grpc
        opts = [("grpc.max_send_message_length", 64 << 20), ("grpc.max_receive_message_length", 64 << 20)]
        self.channel = grpc.aio.insecure_channel(f"{target.host}:{target.port}", options=opts)
        self.stub = pose_pb2_grpc.PoseServiceStub(self.channel)
        self.md = (("x-api-key", api_key),) if api_key else ()
        self.options = options
        self.timeout = timeout_s

    async def send(self, s: Sample) -> tuple[Outcome, int, str | None]:
        from ..client.grpc_client import request_to_proto

        try:
            r = await self.stub.Estimate(
                request_to_proto(s.image, s.boxes, self.options), timeout=self.timeout, metadata=self.md
            )
        except self.grpc.aio.AioRpcError as exc:
            code = exc.code()
            out: Outcome = "rejected" if code == self.grpc.StatusCode.RESOURCE_EXHAUSTED else "error"
            return out, 0, f"grpc_{code.name}"
        return "ok", len(r.persons), None

    async def close(self) -> None:
        await self.channel.close()


# ------------------------------------------------------------------------------------------------- loops
@dataclass
class Record:
    """One request: ``start`` s since the phase began (scheduled start in open loop), ``latency`` s."""

    start: float
    latency: float
    outcome: Outcome
    persons: int
    detail: str | None = None


@dataclass
class PhaseResult:
    """One phase (one concurrency level or one target rate)."""

    mode: Literal["closed", "open"]
    level: float  # concurrency (closed) or target requests/s (open)
    duration_s: float
    records: list[Record] = field(default_factory=list)
    batches: dict[str, Any] = field(default_factory=dict)
    offered_window_s: float | None = None  # open loop: seconds over which requests were started

    def summary(self) -> dict[str, Any]:
        """Counts, throughput (requests/s and persons/s over the phase's wall time) and latency percentiles
        (ms, successful requests only), plus the observed batch sizes."""
        ok = [r for r in self.records if r.outcome == "ok"]
        lat = np.array([r.latency for r in ok]) * 1000.0
        errors: dict[str, int] = {}
        for r in self.records:
            if r.outcome == "error":
                errors[r.detail or "error"] = errors.get(r.detail or "error", 0) + 1
        d = max(self.duration_s, 1e-9)
        extra = {}
        if self.offered_window_s:
            extra["offered_rps"] = round(len(self.records) / self.offered_window_s, 3)
        pct = {f"p{q}": round(float(np.percentile(lat, q)), 2) if len(lat) else None for q in (50, 90, 99)}
        return {
            "mode": self.mode,
            ("concurrency" if self.mode == "closed" else "target_rps"): self.level,
            **extra,
            "sent": len(self.records),
            "ok": len(ok),
            "rejected": sum(r.outcome == "rejected" for r in self.records),
            "errors": sum(r.outcome == "error" for r in self.records),
            "error_kinds": errors,
            "duration_s": round(self.duration_s, 3),
            "requests_per_s": round(len(ok) / d, 3),
            "persons_per_s": round(sum(r.persons for r in ok) / d, 3),
            "latency_ms": {**pct, "mean": round(float(lat.mean()), 2) if len(lat) else None},
            "batch_sizes": self.batches,
        }


async def _timed(send: Send, s: Sample, t_ref: float, scheduled: float) -> Record:
    try:
        outcome, persons, detail = await send(s)
    except Exception as exc:  # connection refused, timeouts, protocol errors: all count as errors
        outcome, persons, detail = "error", 0, type(exc).__name__
    now = time.perf_counter() - t_ref
    return Record(scheduled, now - scheduled, outcome, persons, detail)


async def closed_loop(send: Send, samples: Sequence[Sample], concurrency: int, max_requests: int,
                      max_duration_s: float) -> PhaseResult:  # fmt: skip
    """``concurrency`` workers cycling through ``samples`` until ``max_requests`` were sent or
    ``max_duration_s`` passed (in-flight requests are then awaited)."""
    t0 = time.perf_counter()
    records: list[Record] = []
    counter = 0

    async def worker() -> None:
        nonlocal counter
        while counter < max_requests and time.perf_counter() - t0 < max_duration_s:
            s = samples[counter % len(samples)]
            counter += 1
            records.append(await _timed(send, s, t0, time.perf_counter() - t0))

    await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    return PhaseResult("closed", concurrency, time.perf_counter() - t0, records)


async def open_loop(send: Send, samples: Sequence[Sample], rate: float, max_requests: int,
                    max_duration_s: float, arrivals: Literal["poisson", "uniform"] = "poisson",
                    seed: int = 0) -> PhaseResult:  # fmt: skip
    """Start requests at ``rate`` requests/s (Poisson or evenly spaced) until ``max_requests`` or
    ``max_duration_s``; then await the ones in flight. The phase duration runs to the last answer (so
    requests/s is the achieved throughput); ``offered_rps`` is sent / arrival window."""
    rng = random.Random(seed)
    t0 = time.perf_counter()
    tasks: list[asyncio.Task[Record]] = []
    next_t = 0.0
    i = 0
    while i < max_requests and next_t < max_duration_s:
        delay = next_t - (time.perf_counter() - t0)
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(_timed(send, samples[i % len(samples)], t0, next_t)))
        i += 1
        next_t += rng.expovariate(rate) if arrivals == "poisson" else 1.0 / rate
    window = time.perf_counter() - t0
    records = list(await asyncio.gather(*tasks))
    return PhaseResult("open", rate, time.perf_counter() - t0, records, offered_window_s=window)


async def _scrape(metrics_url: str | None) -> str | None:
    if metrics_url is None:
        return None
    import httpx

    try:
        async with httpx.AsyncClient(timeout=10.0) as c:
            r = await c.get(metrics_url + "/metrics")
            return r.text if r.status_code == 200 else None
    except httpx.HTTPError:
        return None


@dataclass
class LoadConfig:
    """What to run. Counts and durations bound EACH phase (requests, seconds)."""

    concurrency: Sequence[int] = (1, 2, 4, 8)
    rates: Sequence[float] = ()
    max_requests: int = 200
    max_duration_s: float = 10.0
    warmup_requests: int = 2
    timeout_s: float = 30.0
    arrivals: Literal["poisson", "uniform"] = "poisson"
    options: PoseOptions = field(default_factory=PoseOptions)
    api_key: str | None = None


async def run_load(target: Target, samples: Sequence[Sample], cfg: LoadConfig,
                   on_phase: Callable[[dict[str, Any]], None] | None = None) -> list[PhaseResult]:  # fmt: skip
    """Warm up, then one closed-loop phase per concurrency and one open-loop phase per rate; each phase
    gets batch-size deltas from ``/metrics`` scraped just before and after it."""
    tr: _Rest | _Grpc = (_Rest if target.transport == "rest" else _Grpc)(
        target, cfg.options, cfg.timeout_s, cfg.api_key
    )
    results: list[PhaseResult] = []
    try:
        for i in range(cfg.warmup_requests):
            await _timed(tr.send, samples[i % len(samples)], time.perf_counter(), 0.0)
        phases: list[tuple[Literal["closed", "open"], float]] = [("closed", c) for c in cfg.concurrency]
        phases += [("open", r) for r in cfg.rates]
        for mode, level in phases:
            before = await _scrape(target.metrics_url)
            if mode == "closed":
                ph = await closed_loop(tr.send, samples, int(level), cfg.max_requests, cfg.max_duration_s)
            else:
                ph = await open_loop(
                    tr.send, samples, level, cfg.max_requests, cfg.max_duration_s, cfg.arrivals
                )
            ph.batches = batch_deltas(before, await _scrape(target.metrics_url))
            results.append(ph)
            if on_phase is not None:
                on_phase(ph.summary())
    finally:
        await tr.close()
    return results
