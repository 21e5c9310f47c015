"""End to end through the public pipeline API (``PosePipeline.run``), the one the server uses."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
import torch

from service.codecs.functional import dark_decode
from service.pipeline.geometry import affine_matrices, apply_affine
from service.pipeline.image import read_image_file
from service.pipeline.pipeline import PosePipeline
from service.schemas import PoseOptions


def _check_keypoints(kpts, ref_preds, ref_maxvals, wc, applied, margin=None):
    err = np.abs(kpts[:, :2] - ref_preds).max(-1)
    if wc.any():
        assert err[wc].max() <= 5e-3, f"well-conditioned joints off by {err[wc].max()} px"
    if (~applied).any():
        assert err[~applied].max() <= 1e-3
    np.testing.assert_allclose(kpts[:, 2], ref_maxvals, atol=1e-4, rtol=0)


def test_e2e_small_model(fixtures_dir, crop_cases, backend_estimator):
    small_estimator = backend_estimator
    e = np.load(fixtures_dir / "e2e_small_model.npz")
    image = np.ascontiguousarray(crop_cases["image_bgr"][..., ::-1])
    boxes = np.concatenate([e["boxes_xywh"], e["box_scores"][:, None]], axis=1)
    result = PosePipeline(small_estimator).run([image], [boxes], PoseOptions(flip=True, oks_nms=False))[0]
    assert sorted(p.box_index for p in result.persons) == list(range(len(boxes)))
    for p in result.persons:
        i = p.box_index
        _check_keypoints(p.keypoints, e["preds"][i], e["maxvals"][i, :, 0], e["diag_well_conditioned"][i],
                         e["diag_taylor_applied"][i])  # fmt: skip
        assert p.score == pytest.approx(e["rescored_score"][i], abs=1e-5)
    # the network+flip path alone reproduces the official averaged heatmaps
    x = torch.from_numpy(e["input"])
    avg = small_estimator.heatmaps(x, flip=True).numpy()
    np.testing.assert_allclose(avg, e["averaged"], atol=1e-4, rtol=0)


def test_e2e_small_model_decoder_on_official_heatmaps(fixtures_dir):
    e = np.load(fixtures_dir / "e2e_small_model.npz")
    coords, maxvals = dark_decode(torch.from_numpy(e["averaged"]), 11)
    inv = affine_matrices(e["center"], e["scale"], (48, 64), inv=True)
    preds = apply_affine(coords.numpy(), inv).astype(np.float32)
    wc = e["diag_well_conditioned"]
    assert np.abs(preds - e["preds"]).max(-1)[wc].max() <= 1e-3
    np.testing.assert_array_equal(maxvals.numpy(), e["maxvals"][..., 0])
    np.testing.assert_array_equal(np.asarray(coords.numpy() == coords.numpy()), np.ones_like(preds, bool))


@pytest.fixture(scope="module")
def real(fixtures_dir):
    return np.load(fixtures_dir / "e2e_real_coco.npz")


def test_real_images_decode_identically(real, fixtures_dir):
    root = fixtures_dir.parent.parent / "data" / "coco_samples"
    for name, file_sha, pix_sha, hw in zip(
        real["images"],
        real["images_sha256"],
        real["images_decoded_bgr_sha256"],
        real["images_hw"],
        strict=True,
    ):
        data = (root / str(name)).read_bytes()
        assert hashlib.sha256(data).hexdigest() == file_sha
        rgb = read_image_file(str(root / str(name)), honour_exif=False)
        assert list(rgb.shape[:2]) == list(hw)
        assert hashlib.sha256(np.ascontiguousarray(rgb[..., ::-1]).tobytes()).hexdigest() == pix_sha


def test_e2e_real_coco(real, fixtures_dir, backend_estimator):
    """All boxes of the official detection file through the pipeline, on every CPU backend: keypoints, scores,
    NMS and the results list (order, image ids) match the official run."""
    small_estimator = backend_estimator
    root = fixtures_dir.parent.parent / "data" / "coco_samples"
    results_ref = json.loads((fixtures_dir / "e2e_real_coco_results.json").read_text())
    images = [read_image_file(str(root / str(n)), honour_exif=False) for n in real["images"]]
    boxes = []
    for i in range(len(images)):
        sel = np.nonzero(real["image_index"] == i)[0]
        boxes.append(np.concatenate([real["boxes_xywh"][sel], real["box_scores"][sel, None]], axis=1))
    out = PosePipeline(small_estimator).run(images, boxes, PoseOptions(flip=True))
    ours = []
    for i, res in enumerate(out):
        sel = np.nonzero(real["image_index"] == i)[0]
        image_id = int(real["image_id"][sel[0]])
        for p, entry in zip(res.persons, res.to_coco(image_id), strict=True):
            ours.append((int(sel[p.box_index]), p, entry))
    assert [g for g, _, _ in ours] == real["nms_keep"].tolist()
    assert len(ours) == len(results_ref)
    margin_ok = real["diag_argmax_margin"] > 1e-4
    for (g, p, entry), ref in zip(ours, results_ref, strict=True):
        assert entry["image_id"] == ref["image_id"] and entry["category_id"] == 1
        assert entry["score"] == pytest.approx(ref["score"], abs=1e-5)
        _check_keypoints(p.keypoints, real["preds"][g], real["maxvals"][g, :, 0], real["diag_well_conditioned"][g],
                         real["diag_taylor_applied"][g])  # fmt: skip
        # argmax positions agree wherever the top-2 margin is not within round-off
        hm_w, hm_h = 48, 64
        inv = affine_matrices(real["center"][g : g + 1], real["scale"][g : g + 1], (hm_w, hm_h), inv=True)
        ref_int = apply_affine(real["dark_coords_argmax"][g][None], inv)[0].astype(np.float32)
        not_applied = ~real["diag_taylor_applied"][g] & margin_ok[g]
        np.testing.assert_allclose(p.keypoints[not_applied, :2], ref_int[not_applied], atol=1e-3)


def test_decoder_on_official_debug_heatmaps(real):
    coords, maxvals = dark_decode(torch.from_numpy(real["debug_averaged"]), 11)
    idx = real["debug_index"]
    inv = affine_matrices(real["center"][idx], real["scale"][idx], (48, 64), inv=True)
    preds = apply_affine(coords.numpy(), inv).astype(np.float32)
    wc = real["diag_well_conditioned"][idx]
    np.testing.assert_array_equal(maxvals.numpy(), real["maxvals"][idx, :, 0])
    if wc.any():
        assert np.abs(preds - real["preds"][idx]).max(-1)[wc].max() <= 1e-3


def test_debug_crops_bit_exact(real, fixtures_dir, small_estimator):
    root = fixtures_dir.parent.parent / "data" / "coco_samples"
    for k, g in enumerate(real["debug_index"]):
        img = read_image_file(str(root / str(real["image_file"][g])), honour_exif=False)
        prep = small_estimator.prepare(img, np.concatenate([real["boxes_xywh"][g : g + 1], [[1.0]]], axis=1))
        np.testing.assert_array_equal(prep.crops[0], real["debug_crops_rgb"][k])
