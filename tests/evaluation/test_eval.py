"""``posesvc eval``: pycocotools scoring, the results writer (oracle AP 1.0) and the in-process pipeline run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from service.evaluation import (
    STAT_NAMES,
    detection_boxes,
    evaluate_results,
    ground_truth_boxes,
    oracle_results,
    results_entries,
    write_results,
)
from service.evaluation.coco import load_coco


def test_preds_file_scores_reference_ap(cli, samples, capsys):
    rc = cli(["eval", "--preds", str(samples / "xtcocoapi_example_coco_preds.json"),
              "--ann", str(samples / "test_coco.json")])  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0
    assert "AP       0.86089" in out.splitlines()[0]
    for name in STAT_NAMES:
        assert any(ln.startswith(name + " ") for ln in out.splitlines()), name


def test_oracle_predictions_score_ap_one(samples, tmp_path):
    coco = load_coco(samples / "test_coco.json")
    ids = sorted(coco.getImgIds())
    path = write_results(tmp_path / "oracle.json", results_entries(oracle_results(coco, ids)))
    entries = json.loads(path.read_text())
    assert len(entries) == 12 and all(len(e["keypoints"]) == 51 and e["category_id"] == 1 for e in entries)
    stats = evaluate_results(coco, path, ids)
    assert stats["AP"] == pytest.approx(1.0) and stats["AR"] == pytest.approx(1.0)
    assert stats["AP .5"] == pytest.approx(1.0) and stats["AP .75"] == pytest.approx(1.0)


def test_box_sources(samples):
    coco = load_coco(samples / "test_coco.json")
    ids = sorted(coco.getImgIds())
    det = detection_boxes(samples / "test_coco_det_AP_H_56.json", ids)
    assert sum(len(b) for b in det.values()) == 118 and det[785].shape == (22, 5)
    assert len(detection_boxes(samples / "test_coco_det_AP_H_56.json", ids, min_score=0.5)[785]) < 22
    gt = ground_truth_boxes(coco, ids)
    assert sum(len(b) for b in gt.values()) == 12 and (gt[197388][:, 4] == 1).all()


def test_end_to_end_inprocess_with_detections(cli, samples, small_card_path, small_weights, tmp_path, capsys):
    out = tmp_path / "res.json"
    rc = cli(["eval", "--ann", str(samples / "test_coco.json"), "--images", str(samples),
              "--det", str(samples / "test_coco_det_AP_H_56.json"), "--image-ids", "785",
              "--card", str(small_card_path), "--weights", str(small_weights), "--no-flip",
              "--out", str(out), "--no-progress"])  # fmt: skip
    assert rc == 0
    entries = json.loads(out.read_text())
    assert 0 < len(entries) <= 22  # one per detection, less what OKS-NMS suppresses
    assert {e["image_id"] for e in entries} == {785}
    assert all(len(e["keypoints"]) == 51 and e["category_id"] == 1 for e in entries)
    report = json.loads(out.with_suffix(".stats.json").read_text())
    assert report["num_images"] == 1 and report["flip"] is False and report["decoder"] == "dark"
    assert set(report["stats"]) == set(STAT_NAMES) and 0.0 <= report["stats"]["AP"] <= 1.0
    assert capsys.readouterr().out.startswith("AP ")


def test_decoder_switch_and_flip(cli, samples, small_card_path, small_weights, tmp_path):
    base = ["eval", "--ann", str(samples / "test_coco.json"), "--images", str(samples), "--gt-boxes",
            "--image-ids", "40083", "--card", str(small_card_path), "--weights", str(small_weights),
            "--no-progress"]  # fmt: skip
    assert cli([*base, "--decoder", "standard", "--out", str(tmp_path / "std.json")]) == 0
    assert cli([*base, "--decoder", "dark", "--out", str(tmp_path / "dark.json")]) == 0
    std = json.loads((tmp_path / "std.json").read_text())
    dark = json.loads((tmp_path / "dark.json").read_text())
    assert json.loads((tmp_path / "std.stats.json").read_text())["decoder"] == "standard"
    assert len(std) == len(dark) == 2
    assert std[0]["keypoints"] != dark[0]["keypoints"]  # same heatmaps, different sub-pixel decoding


def test_eval_input_errors(cli, samples, tmp_path, capsys):
    ann = str(samples / "test_coco.json")
    assert cli(["eval", "--ann", ann, "--images", str(samples)]) == 2
    assert "--det FILE, --gt-boxes or --detector" in capsys.readouterr().err
    assert cli(["eval", "--ann", ann, "--preds", str(tmp_path / "missing.json")]) == 2
    assert cli(["eval", "--ann", ann, "--gt-boxes", "--images", str(samples), "--image-ids", "1"]) == 2


def test_single_person_metrics_on_ground_truth_boxes(cli, samples, small_card_path, small_weights, tmp_path):
    """``--metrics`` pairs every ground-truth person with the prediction from its own box (no OKS-NMS), and
    computes on exactly those pairs what :mod:`service.evaluation.keypoint_metrics` gives for them."""
    from service.evaluation import keypoint_metrics as km
    from service.evaluation.coco import ground_truth_keypoints, load_coco
    from service.zoo.keypoints import COCO17

    out = tmp_path / "r.json"
    assert cli(["eval", "--ann", str(samples / "test_coco.json"), "--images", str(samples), "--gt-boxes",
                "--image-ids", "40083", "--card", str(small_card_path), "--weights", str(small_weights),
                "--no-progress", "--out", str(out), "--metrics", "pck,pdj,pcp,auc,epe"]) == 0  # fmt: skip
    report = json.loads(out.with_suffix(".stats.json").read_text())
    assert report["oks_nms"] is False and set(report["metrics"]) == set(km.METRICS)
    gt = ground_truth_keypoints(load_coco(samples / "test_coco.json"), [40083])[40083]
    entries = json.loads(out.read_text())
    assert len(entries) == len(gt) == 2
    # results are in score order, which need not be the boxes' order: the reported EPE is one of the two pairings
    candidates = [entries, entries[::-1]]
    epes = []
    for order in candidates:
        pred = np.stack([np.asarray(e["keypoints"]).reshape(17, 3)[:, :2] for e in order])
        epes.append(km.epe(km.make_keypoint_set(pred, gt[:, :, :2], gt[:, :, 2] > 0, COCO17)))
    assert min(abs(report["metrics"]["epe"] - v) for v in epes) < 1e-3


def test_metrics_need_ground_truth_boxes(cli, samples, capsys):
    ann = str(samples / "test_coco.json")
    assert cli(["eval", "--ann", ann, "--images", str(samples), "--det", ann, "--metrics", "pck"]) == 2
    assert "--gt-boxes" in capsys.readouterr().err
    assert cli(["eval", "--images", str(samples), "--gt-boxes"]) == 2
    assert "--ann" in capsys.readouterr().err
