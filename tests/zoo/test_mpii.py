"""MPII against the official ``lib/dataset/mpii.py`` outputs of the zoo fixture set: joint metadata, the
``_get_db`` geometry (records → centre/scale → affine matrices → crops, through the estimator), the PCKh
table and curve (library and ``posesvc eval``), and the in-process MPII test path of ``posesvc eval``."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from service.cli.main import main
from service.evaluation.mpii import (
    TABLE_NAMES,
    THRESHOLDS,
    MpiiGroundTruth,
    load_mpii_gt,
    load_mpii_preds,
    load_mpii_records,
    pckh,
)
from service.pipeline.card import load_card
from service.pipeline.geometry import affine_matrices, apply_affine
from service.zoo.keypoints import MPII16

CARD = "hrnet_w32_256x256_mpii_darkpose"


@pytest.fixture(scope="module")
def geometry(zoo_dir: Path):
    return np.load(zoo_dir / "mpii_geometry.npz")


@pytest.fixture(scope="module")
def pckh_cases(zoo_dir: Path):
    return np.load(zoo_dir / "mpii_pckh.npz")


def _gt_mat(path: Path, d) -> Path:
    """The fixture's ground truth written as the official ``gt_valid.mat`` (a 1x16 cell of names)."""
    from scipy.io import savemat

    names = np.empty((1, 16), dtype=object)
    for i, n in enumerate(d["dataset_joints"]):
        names[0, i] = str(n)
    savemat(str(path), {"dataset_joints": names, "jnt_missing": d["jnt_missing"],
                        "pos_gt_src": d["pos_gt_src"], "headboxes_src": d["headboxes_src"]})  # fmt: skip
    return path


def test_joint_metadata(zoo_dir: Path):
    meta = json.loads((zoo_dir / "mpii_meta.json").read_text())
    short = {"r": "right", "l": "left"}
    names = [f"{short[n[0]]}_{n[2:]}" if n[:2] in ("r_", "l_") else n for n in meta["joint_names"]]
    assert list(MPII16.joints) == names
    assert [list(p) for p in MPII16.flip_pairs] == meta["flip_pairs"]
    card = load_card(CARD)
    assert card.keypoints is MPII16 and card.num_joints == 16 and card.input_size == (256, 256)


def test_records_geometry(zoo_dir: Path, geometry):
    records = load_mpii_records(zoo_dir / "mpii_geometry_records.json")
    np.testing.assert_array_equal(records.center, geometry["center"])
    np.testing.assert_array_equal(records.scale, geometry["scale"])
    np.testing.assert_array_equal(records.joints, geometry["joints_3d"][:, :, :2])
    np.testing.assert_array_equal(records.joints_vis, geometry["joints_3d_vis"][:, :, 0])
    for key, size, inv in (("trans_input", (256, 256), False), ("trans_heatmap", (64, 64), False),
                           ("trans_heatmap_inv", (64, 64), True)):  # fmt: skip
        np.testing.assert_array_equal(affine_matrices(records.center, records.scale, size, inv=inv), geometry[key])
    vis = geometry["joints_3d_vis"][:, :, 0] > 0
    for key, mkey in (("joints_input", "trans_input"), ("joints_heatmap", "trans_heatmap")):
        mapped = apply_affine(records.joints, geometry[mkey])
        ref = geometry[key][:, :, :2]
        np.testing.assert_allclose(mapped[vis], ref[vis], atol=1e-9, rtol=0)
        np.testing.assert_array_equal(ref[~vis], geometry["joints_3d"][:, :, :2][~vis])
    probes = np.broadcast_to(geometry["heatmap_probe_points"].astype(np.float64), (len(records), 5, 2))
    got = apply_affine(probes, affine_matrices(records.center, records.scale, (64, 64), inv=True))
    np.testing.assert_allclose(got, geometry["heatmap_probe_to_image"], atol=1e-9, rtol=0)


def test_estimator_crops_at_annotated_centre(zoo_dir: Path, geometry, data_dir: Path):
    """``PoseEstimator.prepare_at`` (what ``posesvc eval --mpii`` runs) builds the official matrices and the
    official crops (``cv2.warpAffine`` of the stored matrix, bit for bit) from float64 MPII centres."""
    from service.pipeline.estimator import PoseEstimator
    from service.pipeline.image import read_image_file

    est = PoseEstimator.from_card(load_card(CARD), None, allow_untrained=True)
    records = load_mpii_records(zoo_dir / "mpii_geometry_records.json")
    image = read_image_file(str(data_dir / "coco_samples" / "000000000785.jpg"), honour_exif=False)
    p = est.prepare_at(image, records.center, records.scale)
    np.testing.assert_array_equal(p.inv, geometry["trans_heatmap_inv"])
    for i in range(len(records)):
        ref = cv2.warpAffine(image, geometry["trans_input"][i], (256, 256), flags=cv2.INTER_LINEAR)
        np.testing.assert_array_equal(p.crops[i], ref)


def test_pckh_matches_official_table_and_curve(pckh_cases):
    d = pckh_cases
    gt = MpiiGroundTruth(tuple(str(n) for n in d["dataset_joints"]), d["jnt_missing"], d["pos_gt_src"],
                         d["headboxes_src"])  # fmt: skip
    assert list(d["name_value_names"]) == list(TABLE_NAMES)
    np.testing.assert_array_equal(THRESHOLDS, d["thresholds"])
    for level in range(len(d["level_names"])):
        report = pckh(d["preds"][level], gt)
        np.testing.assert_array_equal(list(report.name_value.values()), d["name_value"][level])
        np.testing.assert_array_equal(report.pck_all, d["pckAll"][level])
        # the honest figure next to the official Mean@0.1 (which is taken at 0.11)
        ratio = report.joint_counts * np.isin(np.arange(16), [6, 7], invert=True)
        assert report.mean_at_010 == pytest.approx(float(d["pckAll"][level][10] @ (ratio / ratio.sum())), abs=1e-9)


def test_eval_cli_scores_pred_mat(tmp_path: Path, pckh_cases, capsys):
    """``posesvc eval --mpii-gt gt_valid.mat --preds pred.mat`` prints the official table (the ``boundary``
    level: joints at exactly 0.5 / 0.11 / 0.1 head sizes) and reports it as JSON, equal to the official."""
    from scipy.io import savemat

    d = pckh_cases
    gt_file = _gt_mat(tmp_path / "gt_valid.mat", d)
    assert load_mpii_gt(gt_file).dataset_joints == tuple(str(n) for n in d["dataset_joints"])
    level = list(d["level_names"]).index("boundary")
    pred_file = tmp_path / "pred.mat"
    savemat(str(pred_file), {"preds": d["preds"][level][:, :, 0:2] + 1.0})  # the official pred.mat: 1-based
    np.testing.assert_array_equal(load_mpii_preds(pred_file) + 1.0, d["preds"][level] + 1.0)
    assert main(["eval", "--mpii-gt", str(gt_file), "--preds", str(pred_file)]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("| posesvc"))
    printed = [float(v) for v in row.strip("| ").split("|")[1:]]
    np.testing.assert_allclose(printed, d["name_value"][level], atol=5e-4, rtol=0)
    assert "threshold 0.11" in out
    assert main(["eval", "--mpii-gt", str(gt_file), "--preds", str(pred_file), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)["pckh"]
    assert list(got) == list(TABLE_NAMES)
    np.testing.assert_array_equal(list(got.values()), d["name_value"][level])


def test_eval_cli_mpii_test_path(tmp_path: Path, zoo_dir: Path, geometry, data_dir: Path, capsys):
    """``posesvc eval --mpii valid.json --images DIR`` runs the model at every record's centre and scale,
    writes the official 1-based pred.mat, and reports the other metrics against the records' joints."""
    from service.evaluation.mpii import predict_records
    from service.pipeline.estimator import PoseEstimator

    records_json = json.loads((zoo_dir / "mpii_geometry_records.json").read_text())[:3]
    images = tmp_path / "images"
    images.mkdir()
    for r in records_json:
        target = images / r["image"]
        if not target.exists():
            target.symlink_to(data_dir / "coco_samples" / "000000000785.jpg")
    ann = tmp_path / "valid.json"
    ann.write_text(json.dumps(records_json))
    out = tmp_path / "pred.mat"
    args = ["eval", "--mpii", str(ann), "--images", str(images), "--card", CARD, "--allow-untrained",
            "--no-progress", "--out", str(out), "--metrics", "pck,pdj,pcp,auc,epe", "--json"]  # fmt: skip
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["card"] == CARD and report["trained"] is False and set(report["metrics"]) == {
        "pck", "pdj", "pcp", "auc", "epe"}  # fmt: skip
    preds = load_mpii_preds(out)
    est = PoseEstimator.from_card(load_card(CARD), None, allow_untrained=True)
    direct = predict_records(est, load_mpii_records(ann), images)
    # the CLI serves through the default backend (auto: ONNX Runtime here), this through torch: untrained
    # heatmaps are not Gaussian, so DARK's Taylor step turns ~1e-6 of forward round-off into ~1e-3 px
    np.testing.assert_allclose(preds, direct, atol=1e-2, rtol=1e-4)
    assert preds.shape == (3, 16, 2) and np.isfinite(preds).all()


@pytest.mark.parametrize(
    "card_name, keys_file",
    [("hrnet_w32_256x256_mpii_darkpose", "keys_w32.json"), ("hrnet_w32_256x256_mpii_mmpose_dark", "keys_w32.json"),
     ("hrnet_w48_256x256_mpii_mmpose_dark", "keys_w48.json")],
)  # fmt: skip
def test_mpii_cards_load_their_checkpoint_layout_strictly(card_name, keys_file, zoo_dir, fixtures_dir, zoo_seed,
                                                          tmp_path):  # fmt: skip
    """The official HRNet key list with a 16-joint final layer (MODEL_ZOO.md: 28,536,080 parameters for W32),
    in the card's checkpoint format (DarkPose: bare keys; MMPose 0.x: ``backbone.`` / ``keypoint_head.`` in a
    ``state_dict``), loads strictly into the card's network and gives it exactly those weights."""
    import torch

    from service.nets import build_net, load_checkpoint_file

    from .conftest import recipe_state_dict

    source = zoo_dir if (zoo_dir / keys_file).is_file() else fixtures_dir
    keys = json.loads((source / keys_file).read_text())
    keys = [[n, [16, *s[1:]] if n.startswith("final_layer.") else s] for n, s, *_ in keys]
    sd = recipe_state_dict(keys, zoo_seed, nd_scale=0.5)
    card = load_card(card_name)
    if card.checkpoint.format == "mmpose":
        blob = {"meta": {"mmpose_version": "0.x"},
                "state_dict": {("keypoint_head." if k.startswith("final_layer.") else "backbone.") + k: v
                               for k, v in sd.items()}}  # fmt: skip
    else:
        blob = sd
    path = tmp_path / "w.pth"
    torch.save(blob, path)
    net = build_net(card.architecture, card.arch_params)
    load_checkpoint_file(net, path, card.checkpoint.format)
    got = net.state_dict()
    assert list(got) == [k for k, _ in keys]
    assert all(torch.equal(got[k], v) for k, v in sd.items())
    if "w32" in card_name:
        assert sum(v.numel() for k, v in got.items() if "num_batches" not in k and "running" not in k) == 28_536_080
