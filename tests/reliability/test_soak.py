"""Soak: mixed REST + streaming traffic; RSS growth after warm-up < 5 %, no fd/thread growth, nothing lost.
The default run soaks for ``POSESVC_SOAK_FAST_S`` (40 s); ``-m slow`` for ``POSESVC_SOAK_S`` (600 s)."""

from __future__ import annotations

import os

import pytest

from bench.soak import FD_SLACK, RSS_LIMIT, THREAD_SLACK, soak
from tests.transport.conftest import start_server, stop_server

from .conftest import write_summary


def _run(tmp_path, card, weights, duration_s: float, name: str) -> None:
    srv = start_server(tmp_path, card, weights)
    try:
        out = soak(srv.http, srv.grpc, srv.proc.pid, duration_s)
    finally:
        out["server_exit_code"] = stop_server(srv)
    write_summary(name, out)
    assert out["lost"] == 0 and out["server_errors"] == 0, out["counts"]
    assert out["requests"] > 0 and out["frames"] > 0, out["counts"]
    assert out["rss_growth_pct"] < 100 * RSS_LIMIT, out
    assert out["fds_end"] - out["fds_base"] <= FD_SLACK, out
    assert out["threads_end"] - out["threads_base"] <= THREAD_SLACK, out
    assert out["server_exit_code"] == 0


def test_soak_fast(tmp_path, small_card_path, small_weights) -> None:
    _run(
        tmp_path,
        small_card_path,
        small_weights,
        float(os.environ.get("POSESVC_SOAK_FAST_S", "40")),
        "soak-fast",
    )


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_soak_long(tmp_path, small_card_path, small_weights) -> None:
    _run(
        tmp_path, small_card_path, small_weights, float(os.environ.get("POSESVC_SOAK_S", "600")), "soak-long"
    )
