"""Over the wire, the server returns the official DarkPose keypoints (fixture tolerances), REST and gRPC."""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest

from service.client import connect
from service.schemas import PoseOptions


def _check(kpts, ref_preds, ref_maxvals, wc, applied):
    err = np.abs(np.asarray(kpts)[:, :2] - ref_preds).max(-1)
    if wc.any():
        assert err[wc].max() <= 5e-3
    if (~applied).any():
        assert err[~applied].max() <= 1e-3
    np.testing.assert_allclose(np.asarray(kpts)[:, 2], ref_maxvals, atol=1e-4)


@pytest.mark.parametrize("transport", ["rest", "grpc"])
def test_e2e_small_model_over_the_wire(server, fixtures_dir, synthetic_png, transport):
    e = np.load(fixtures_dir / "e2e_small_model.npz")
    boxes = np.concatenate([e["boxes_xywh"], e["box_scores"][:, None]], axis=1).tolist()
    client = connect(server.http if transport == "rest" else f"grpc://{server.grpc}")
    result = client.estimate(synthetic_png, boxes=boxes, options=PoseOptions(flip=True, oks_nms=False))
    client.close()
    assert result.trained and len(result.persons) == len(boxes)
    for p in result.persons:
        i = next(j for j, b in enumerate(boxes) if np.allclose(p.bbox, b[:4], atol=1e-3))
        _check(
            p.keypoints,
            e["preds"][i],
            e["maxvals"][i, :, 0],
            e["diag_well_conditioned"][i],
            e["diag_taylor_applied"][i],
        )
        assert p.score == pytest.approx(e["rescored_score"][i], abs=1e-5)


@pytest.mark.parametrize("transport", ["rest", "grpc"])
def test_real_coco_image_over_the_wire(server, fixtures_dir, data_dir, transport):
    """All official detections of one val2017 photo: same NMS survivors, order, scores and keypoints."""
    real = np.load(fixtures_dir / "e2e_real_coco.npz")
    ref = json.loads((fixtures_dir / "e2e_real_coco_results.json").read_text())
    k = int(np.argmin([np.sum(real["image_index"] == i) for i in range(len(real["images"]))]))  # fewest boxes
    sel = np.nonzero(real["image_index"] == k)[0]
    image_id = int(real["image_id"][sel[0]])
    data = (data_dir / "coco_samples" / str(real["images"][k])).read_bytes()
    boxes = np.concatenate([real["boxes_xywh"][sel], real["box_scores"][sel, None]], axis=1)
    if transport == "rest":
        r = httpx.post(
            server.http + "/v1/pose",
            files={"image": ("img.jpg", data, "image/jpeg")},
            data={
                "boxes": json.dumps(boxes.tolist()),
                "format": "coco",
                "image_id": str(image_id),
                "flip": "true",
            },
            timeout=120,
        )
        assert r.status_code == 200, r.text
        got = r.json()
    else:
        client = connect(f"grpc://{server.grpc}")
        res = client.estimate(data, boxes=boxes.tolist(), options=PoseOptions(flip=True), timeout_s=120)
        client.close()
        got = res.to_coco(image_id)
    want = [(int(g), r_) for g, r_ in zip(real["nms_keep"], ref, strict=True) if r_["image_id"] == image_id]
    assert len(got) == len(want)
    for entry, (g, r_) in zip(got, want, strict=True):
        assert entry["image_id"] == image_id and entry["category_id"] == 1
        assert entry["score"] == pytest.approx(r_["score"], abs=1e-5)
        kp = np.asarray(entry["keypoints"], dtype=np.float64).reshape(-1, 3)
        _check(
            kp,
            real["preds"][g],
            real["maxvals"][g, :, 0],
            real["diag_well_conditioned"][g],
            real["diag_taylor_applied"][g],
        )
