"""``posesvc eval --url`` and ``posesvc bench`` against a real server (small fixture model), plus refusal of
non-loopback targets and the micro-benchmark on the small model."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest

from service.loadgen import LoadConfig, RemoteTargetRefused, load_samples, parse_target, run_load
from service.loadgen.prom import batch_deltas


def _sorted(entries):
    return sorted(entries, key=lambda e: (e["image_id"], -e["score"]))


def _assert_same(remote, local):
    assert len(remote) == len(local) == 3
    for r, lo in zip(_sorted(remote), _sorted(local), strict=True):
        assert r["image_id"] == lo["image_id"]
        np.testing.assert_allclose(r["keypoints"], lo["keypoints"], atol=0.05)


def _url_eval(cli, samples, url, tmp_path):
    assert cli(["eval", "--ann", str(samples / "test_coco.json"), "--images", str(samples), "--gt-boxes",
                "--image-ids", "40083,785", "--no-progress", "--url", url,
                "--out", str(tmp_path / "remote.json")]) == 0  # fmt: skip
    assert json.loads((tmp_path / "remote.stats.json").read_text())["url"] == url
    return json.loads((tmp_path / "remote.json").read_text())


def test_eval_url_rest_matches_inprocess(cli, samples, eval_server, small_card_path, small_weights, tmp_path):
    remote = _url_eval(cli, samples, eval_server.http, tmp_path)
    assert cli(["eval", "--ann", str(samples / "test_coco.json"), "--images", str(samples), "--gt-boxes",
                "--image-ids", "40083,785", "--no-progress", "--card", str(small_card_path),
                "--weights", str(small_weights), "--out", str(tmp_path / "local.json")]) == 0  # fmt: skip
    _assert_same(remote, json.loads((tmp_path / "local.json").read_text()))


def test_eval_url_grpc_matches_inprocess(cli, samples, eval_server, small_estimator, tmp_path):
    """gRPC carries boxes as doubles, so remote and in-process runs see identical boxes (with random weights a
    1e-5 px crop shift can move an argmax far away)."""
    from service.evaluation.coco import (
        ground_truth_boxes,
        inprocess_runner,
        load_coco,
        predict_dataset,
        results_entries,
    )
    from service.pipeline.pipeline import PosePipeline
    from service.schemas import PoseOptions

    remote = _url_eval(cli, samples, "grpc://" + eval_server.grpc, tmp_path)
    coco = load_coco(samples / "test_coco.json")
    boxes = ground_truth_boxes(coco, [40083, 785])
    runner = inprocess_runner(PosePipeline(small_estimator), PoseOptions())
    local, _ = predict_dataset(runner, coco, samples, [40083, 785], boxes, progress=False)
    _assert_same(remote, results_entries(local))


def _check_counts(phase: dict) -> None:
    assert phase["ok"] + phase["rejected"] + phase["errors"] == phase["sent"] > 0


def test_loadgen_rest_closed_and_open_loop(eval_server, samples):
    target = parse_target(eval_server.http)
    data = load_samples(samples, samples / "test_coco.json", client_boxes=True)
    assert len(data) == 4 and sum(len(s.boxes or []) for s in data) == 12
    cfg = LoadConfig(concurrency=(1, 4), rates=(4.0,), max_requests=6, max_duration_s=2.5, warmup_requests=1)
    phases = [p.summary() for p in asyncio.run(run_load(target, data, cfg))]
    assert [p["mode"] for p in phases] == ["closed", "closed", "open"]
    for p in phases:
        _check_counts(p)
        assert p["sent"] <= 6
    c1 = phases[0]
    assert c1["ok"] > 0 and c1["persons_per_s"] > 0 and c1["latency_ms"]["p50"] <= c1["latency_ms"]["p99"]
    b = c1["batch_sizes"]
    assert b["images"]["batches"] >= 1 and b["images"]["items"] == c1["ok"]
    assert b["crops"]["items"] == sum(len(s.boxes or []) for s in (data * 6)[: c1["ok"]])


def test_bench_cli_grpc_writes_json_and_plots(cli, eval_server, samples, tmp_path, capsys):
    out = tmp_path / "bench"
    rc = cli(["bench", "--url", "grpc://" + eval_server.grpc, "--metrics-url", eval_server.http,
              "--data", str(samples), "--concurrency", "1,2", "--rates", "3", "--requests", "4",
              "--duration", "2", "--out", str(out)])  # fmt: skip
    assert rc == 0
    report = json.loads((out / "load.json").read_text())
    assert report["transport"] == "grpc" and len(report["phases"]) == 3
    for p in report["phases"]:
        _check_counts(p)
    assert report["phases"][0]["batch_sizes"]["images"]["batches"] >= 1
    assert (out / "throughput_vs_concurrency.png").stat().st_size > 1000
    assert (out / "latency_cdf.png").stat().st_size > 1000
    assert "c=2" in capsys.readouterr().out


def test_loadgen_counts_errors_against_dead_port(samples):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = load_samples(samples, client_boxes=False, limit=1)
    cfg = LoadConfig(concurrency=(2,), max_requests=4, max_duration_s=3.0, warmup_requests=0, timeout_s=2.0)
    (phase,) = asyncio.run(run_load(parse_target(f"http://127.0.0.1:{port}"), data, cfg))
    s = phase.summary()
    assert s["sent"] == 4 and s["errors"] == 4 and s["ok"] == 0 and s["batch_sizes"] == {}


def test_non_loopback_target_is_refused(cli, capsys):
    for url in ("http://10.1.2.3:8000", "grpc://192.0.2.1:50051", "http://example.invalid:80"):
        with pytest.raises(RemoteTargetRefused):
            parse_target(url)
    with pytest.raises(RemoteTargetRefused):
        parse_target("grpc://127.0.0.1:50051", metrics_url="http://10.0.0.1:8000")
    assert parse_target("http://10.1.2.3:8000", allow_remote=True).transport == "rest"
    assert parse_target("http://localhost:8000").metrics_url == "http://localhost:8000"
    assert parse_target("grpc://[::1]:50051").metrics_url is None
    assert cli(["bench", "--url", "http://10.1.2.3:8000"]) == 2
    assert "--allow-remote" in capsys.readouterr().err


def test_batch_deltas_from_prometheus_text():
    def text(count: float, total: float, b1: float, b2: float) -> str:
        lab = 'model="pose",unit="images"'
        return (f"# TYPE posesvc_batch_size histogram\nposesvc_batch_size_bucket{{{lab},le=\"1.0\"}} {b1}\n"
                f"posesvc_batch_size_bucket{{{lab},le=\"2.0\"}} {b2}\nposesvc_batch_size_bucket{{{lab},le=\"+Inf\"}} {b2}\n"
                f"posesvc_batch_size_count{{{lab}}} {count}\nposesvc_batch_size_sum{{{lab}}} {total}\n"
                'posesvc_batch_size_count{model="detector",unit="images"} 9\n')  # fmt: skip

    d = batch_deltas(text(2, 3, 1, 2), text(6, 10, 2, 6))
    assert d == {"images": {"batches": 4, "items": 7, "mean": 1.75, "histogram": {"1.0": 1, "2.0": 3}}}


def test_micro_bench_small_model(small_estimator):
    from service.loadgen.micro import format_rows, micro_bench

    rows = micro_bench(small_estimator, persons=2, reps=1, decode_persons=4, precisions=("fp32",))
    names = {(r.group, r.name) for r in rows}
    assert ("pipeline", "fp32 flip on") in names and ("pipeline", "fp32 flip off") in names
    assert ("forward", "fp32 flip (batch 4)") in names and ("crop", "crop + normalise") in names
    assert {r.name.split(" (")[0] for r in rows if r.group == "decode"} == {
        "DARK vectorised", "DARK torch ops", "standard vectorised", "DARK per-joint loop"}  # fmt: skip
    assert all(r.ms_per_person > 0 for r in rows)
    assert "ms/person" in format_rows(rows)
