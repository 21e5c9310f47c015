"""``posesvc serve``: start the engine, the HTTP server (REST, web page, metrics) and the gRPC server.

Refuses to start without pose weights (naming the three ways to provide them) unless ``--allow-untrained``.
SIGTERM/SIGINT: ``/readyz`` turns 503 and admission stops at once (new requests get 503 ``not_ready``; the port
stays open until the drain ends), admitted requests are drained within ``engine.drain_grace_s``, then the
workers stop, the listener closes and the process exits 0 (also when a worker is still inside a
forward that outlived the grace period: its requests are failed first, and the process leaves without the
interpreter teardown that would otherwise abort under the busy native thread).
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
from typing import TYPE_CHECKING, Any

from .. import __version__
from .common import add_model_args, settings_from_args, untrained_warning

if TYPE_CHECKING:
    from ..settings import Settings

log = logging.getLogger("posesvc.serve")

#: uvicorn waits this much longer than the engine's drain grace, so leftovers are answered, not cut off (s)
DRAIN_MARGIN_S = 3.0


def register(sub: Any) -> None:
    p = sub.add_parser("serve", help="run the pose service (REST + gRPC)")
    add_model_args(p, several=True)
    p.add_argument("--host", help="bind address (default: POSESVC_HOST or 127.0.0.1)")
    p.add_argument("--http-port", type=int, help="HTTP port (default: POSESVC_HTTP_PORT or 8000)")
    p.add_argument("--grpc-port", type=int, help="gRPC port (default: POSESVC_GRPC_PORT or 50051)")
    p.add_argument("--no-grpc", action="store_true", help="serve HTTP only")
    p.add_argument(
        "--detector-weights", help="person detector: local .pt, Ultralytics name, or .yaml (untrained)"
    )
    p.add_argument(
        "--no-detector", action="store_true", help="serve without a person detector (clients send boxes)"
    )
    p.add_argument(
        "--no-download",
        action="store_true",
        help="never download missing weights on start (default: fetch the cards' checkpoints and the detector's "
        "weights when missing; POSESVC_DOWNLOAD=false)",
    )
    p.add_argument("--log-level", choices=["debug", "info", "warning", "error"])
    p.set_defaults(func=run)


def serve_settings(args: argparse.Namespace) -> Settings:
    """Settings from env/.env with the command-line flags on top."""
    s = settings_from_args(args)
    upd: dict[str, object] = {}
    if getattr(args, "no_grpc", False):
        upd["enable_grpc"] = False
    for flag in ("host", "http_port", "grpc_port"):
        if getattr(args, flag, None) is not None:
            upd[flag] = getattr(args, flag)
    if args.log_level:
        upd["log_level"] = args.log_level
    if getattr(args, "no_download", False):
        upd["download"] = False
    if args.detector_weights:
        upd["detector"] = s.detector.model_copy(update={"weights": args.detector_weights})
    return s.model_copy(update=upd) if upd else s


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from ..engine import PoseEngine
    from ..engine.engine import backend_of
    from ..engine.factory import (
        DetectorPool,
        SettingsPipelineFactory,
        download_missing_detector,
        download_missing_weights,
    )
    from ..engine.metrics import metrics_hooks
    from ..engine.router import ModelRouter
    from ..errors import InvalidInput
    from ..observability.metrics import Metrics
    from ..pipeline.card import load_card
    from ..transport.auth import KeyChecker
    from ..transport.grpc.interceptors import AuthInterceptor
    from ..transport.grpc.server import GrpcServer
    from ..transport.http.app import create_app
    from ..transport.http.server import DrainingServer

    s = serve_settings(args)
    logging.getLogger("service").setLevel(s.log_level.upper())
    log.setLevel(s.log_level.upper())
    names = s.model.served_cards()
    cards = [load_card(n, s.model.models_dir) for n in names]
    if len({c.name for c in cards}) != len(cards):
        raise InvalidInput(f"each served card needs its own name; got {', '.join(c.name for c in cards)}")
    if len(cards) > 1 and s.model.weights is not None:
        raise InvalidInput("--weights (POSESVC_MODEL__WEIGHTS) names one file: with several cards, put each "
                           "card's checkpoint in the weights cache (posesvc weights import PATH --card NAME)")  # fmt: skip
    card = cards[0]
    devices = s.devices()
    # first start: the cards' checkpoints (and the detector's weights) when missing, unless --no-download
    for c in cards:
        download_missing_weights(s, c, warn=lambda m: log.warning("%s", m))
    if not args.no_detector:
        download_missing_detector(s, warn=lambda m: log.warning("%s", m))
    detectors = DetectorPool(s, fallback_untrained=s.allow_untrained)  # one detector, shared by every model
    metrics = Metrics()
    slots: dict[str, PoseEngine] = {}
    backends: list[str] = []
    for c in cards:
        factory = SettingsPipelineFactory(
            s, c, allow_untrained=s.allow_untrained, detector=not args.no_detector, detectors=detectors
        )
        if factory.weights is None:
            log.warning("%s", untrained_warning(c))
        pipe = factory.preload(devices[0])  # load weights and detector now: fail before binding the port
        backends.append(backend_of(pipe.estimator))
        note = str(getattr(pipe.estimator, "backend_note", ""))
        log.info("model %s serves through %s%s", c.name, backends[-1], f" ({note})" if note else "")
        metrics.set_model_info(c.name, mode=c.kind, backend=backends[-1], keypoint_schema=c.keypoints.name)
        slots[c.name] = PoseEngine.from_settings(
            s, factory, hooks=metrics_hooks(metrics, c.joint_names, c.name)
        )
    engine = ModelRouter(slots)
    grpc_server = None
    if s.enable_grpc:

        def grpc_reject(reason: str, _method: str) -> None:
            metrics.requests_rejected_total.labels(reason=reason).inc()

        interceptors = [AuthInterceptor(KeyChecker(s.api_key_hashes), grpc_reject)]
        grpc_server = GrpcServer(engine, cards, s, interceptors=interceptors, metrics=metrics)
    metrics.set_build_info(
        version=__version__,
        pose_model=",".join(c.name for c in cards),
        detector="none" if args.no_detector else s.detector.weights,
        device=",".join(devices),
        precision=s.precision_for(devices[0]),
        flip_test=s.flip_test,
        decoder=card.codec,
        backend=",".join(backends),
    )
    app = create_app(s, engine, card=cards, metrics=metrics, grpc_server=grpc_server)
    config = uvicorn.Config(
        app,
        host=s.host,
        port=s.http_port,
        log_level=s.log_level,
        lifespan="on",
        # longer than the engine's drain (started at the signal): answers of failed leftovers get written
        timeout_graceful_shutdown=max(1, round(s.engine.drain_grace_s + DRAIN_MARGIN_S)),
        ssl_certfile=str(s.tls_cert_file) if s.tls_cert_file is not None else None,
        ssl_keyfile=str(s.tls_key_file) if s.tls_key_file is not None else None,
    )
    server = DrainingServer(config, engine, s.engine.drain_grace_s)
    # uvicorn re-raises the signal it caught after its graceful shutdown; make that a no-op so that a
    # SIGTERM/SIGINT shutdown exits 0 instead of dying from the re-raised signal.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: None)
    scheme = "https" if s.tls_enabled else "http"
    grpc_url = f" and grpc{'s' if s.tls_enabled else ''}://{s.host}:{s.grpc_port}" if grpc_server else ""
    log.info(
        "serving %s on %s at %s://%s:%d%s",
        ", ".join(c.name for c in cards),
        ",".join(devices),
        scheme,
        s.host,
        s.http_port,
        grpc_url,
    )
    server.run()
    busy = engine.running_threads()
    if busy:
        # A worker is still inside a forward that outlived the grace period; its requests were already failed
        # and answered. Tearing the interpreter down under a thread running native torch code aborts the process
        # ("terminate called without an active exception", exit 134), so leave without the teardown.
        log.warning(
            "exiting while %s still compute(s) a batch whose requests were already failed", ", ".join(busy)
        )
        _exit_now(0)
    return 0


def _exit_now(code: int) -> None:
    """Flush logs and standard streams, then end the process without interpreter teardown."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # closed or broken stream: nothing left to save
            stream.flush()
    os._exit(code)
