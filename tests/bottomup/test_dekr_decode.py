"""DEKR decoding against the official code's intermediates (``../shared/fixtures/dekr``, or
``POSESVC_DEKR_FIXTURES``): the decode-only cases (synthetic network outputs, plain and flipped passes, COCO and
CrowdPose, two map sizes, with and without rescoring, an empty scene) and the centre NMS cases (the pool size
rule at its thresholds), at the fixture README's tolerances."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from service.codecs.dekr_decode import (
    FLIP_CROWDPOSE,
    LINKS_CROWDPOSE,
    DekrConfig,
    centre_candidates,
    decode,
)
from service.nets.rescore import PredictOKSNet, rescore_input_channels

from .test_dekr_net import DEKR, recipe

CASES = sorted(p.stem.removeprefix("decode_") for p in DEKR.glob("decode_*.npz"))


def _cfg(case: str, input_size: int) -> DekrConfig:
    if case.startswith("crowdpose"):
        return DekrConfig(flip_index=FLIP_CROWDPOSE, links=LINKS_CROWDPOSE, input_size=input_size, nms_num=7)
    return DekrConfig(input_size=input_size)


def _rescore_net(cfg: DekrConfig, case: str) -> PredictOKSNet:
    name = "crowdpose" if case.startswith("crowdpose") else "coco"
    keys = json.loads((DEKR / f"keys_rescore_{name}.json").read_text())
    seed = int(json.loads((DEKR / "provenance.json").read_text())["seed"])
    net = PredictOKSNet(rescore_input_channels(cfg.num_joints, len(cfg.links[0]))).eval()
    net.load_state_dict(recipe(keys, seed), strict=True)
    return net


def test_cases_present() -> None:
    assert len(CASES) >= 7, CASES


@pytest.mark.parametrize("case", CASES)
def test_decode_case(case: str) -> None:
    d = np.load(DEKR / f"decode_{case}.npz")
    cfg = _cfg(case, int(d["input_size"]))
    flip = bool(d["flip_test"])
    t = {k: torch.from_numpy(d[k].astype(np.float32)) for k in ("net_heatmap", "net_offset", "net_heatmap_flip",
                                                                  "net_offset_flip") if k in d.files}  # fmt: skip
    net = _rescore_net(cfg, case) if bool(d["rescore_valid"]) else None
    out = decode(t["net_heatmap"], t["net_offset"], t.get("net_heatmap_flip") if flip else None,
                 t.get("net_offset_flip") if flip else None, cfg, d["center"], d["scale_resized"],
                 tuple(int(v) for v in d["base_size"]), net)  # fmt: skip
    if "heatmap" in d.files:
        np.testing.assert_allclose(out.heatmap.numpy(), d["heatmap"], atol=1e-6, rtol=0)
        np.testing.assert_allclose(out.posemap.numpy(), d["posemap"], atol=1e-6, rtol=0)
    assert out.pool_kernel == int(d["pool_kernel"])
    np.testing.assert_array_equal(out.ctr_ind.numpy(), d["ctr_ind"])
    np.testing.assert_allclose(out.ctr_score.numpy(), d["ctr_score"], rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(out.proposals.numpy(), d["proposals"], rtol=1e-6, atol=1e-5)
    if len(d["ctr_ind"]) == 0:
        assert out.poses.shape == (0, cfg.num_joints, 3) and len(out.scores) == 0
        return
    # heat values are exact given the same floor cell: compare where the coordinate is not within 1e-4 of an integer
    coord = d["proposals"][:, :, :2]
    safe = (np.abs(coord - np.round(coord)) > 1e-4).all(-1)
    np.testing.assert_array_equal(out.heatval.numpy()[safe], d["heatval"][safe])
    np.testing.assert_allclose(out.heat_score.numpy(), d["heat_score"], rtol=1e-6, atol=1e-5)
    assert out.nms_keep == d["nms_keep"].tolist()
    np.testing.assert_allclose(out.nms_poses, d["nms_poses"], rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(out.nms_scores, d["nms_scores"], rtol=1e-6, atol=1e-5)
    np.testing.assert_allclose(out.poses, d["final_poses"], atol=1e-3, rtol=0)
    if net is not None:
        np.testing.assert_allclose(out.rescore_feature, d["rescore_feature"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(out.scores, d["final_scores"], rtol=1e-5, atol=1e-6)


def test_centre_nms_cases() -> None:
    d = np.load(DEKR / "centre_nms_cases.npz")
    cases = sorted({k.split("__")[0] for k in d.files})
    assert len(cases) == 4
    for case in cases:
        centre = torch.from_numpy(d[f"{case}__centre"].astype(np.float32))
        ind, score, kernel = centre_candidates(centre, DekrConfig())
        assert kernel == int(case.rsplit("pool", 1)[1]), case
        np.testing.assert_array_equal(ind.numpy(), d[f"{case}__ctr_ind"], err_msg=case)
        np.testing.assert_allclose(score.numpy(), d[f"{case}__ctr_score"], rtol=1e-6, atol=1e-6, err_msg=case)
