"""The DEKR network against the official ``HRNet/DEKR`` code (fixtures in ``../shared/fixtures/dekr``, or
``POSESVC_DEKR_FIXTURES``): key layouts and parameter counts of W32/W48 for COCO and CrowdPose, strict loading of
the recipe weights (the ``regular_matrix`` buffers included), and the raw outputs of the official W32 COCO
network on the e2e case's resized photo, plain and flipped (+3 px shift) passes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from service.nets import build_net

REPO = Path(__file__).resolve().parents[2]
DEKR = Path(os.environ.get("POSESVC_DEKR_FIXTURES", REPO.parent / "shared" / "fixtures" / "dekr"))
W32 = [[32, 64], [32, 64, 128], [32, 64, 128, 256]]
W48 = [[48, 96], [48, 96, 192], [48, 96, 192, 384]]
CONFIGS = {  # key file -> (architecture parameters, parameter count from the fixture README)
    "keys_dekr_w32_coco.json": ({"stage_channels": W32, "num_joints": 17, "heatmap_channels": 32}, 29_561_182),
    "keys_dekr_w48_coco.json": ({"stage_channels": W48, "num_joints": 17, "heatmap_channels": 48}, 65_684_590),
    "keys_dekr_w32_crowdpose.json": ({"stage_channels": W32, "num_joints": 14, "heatmap_channels": 32}, 29_522_071),
    "keys_dekr_w48_crowdpose.json": ({"stage_channels": W48, "num_joints": 14, "heatmap_channels": 48}, 65_634_631),
}


@pytest.fixture(scope="module")
def dekr_dir() -> Path:
    if not DEKR.is_dir():
        pytest.fail(f"DEKR fixtures not found at {DEKR} (set POSESVC_DEKR_FIXTURES)")
    return DEKR


def _seed(dekr_dir: Path) -> int:
    prov = json.loads((dekr_dir / "provenance.json").read_text())
    return int(prov["seed"])


def recipe(keys: list, seed: int, e2e_adjust: bool = False) -> dict[str, torch.Tensor]:
    """The fixture README's weights recipe (plus, for the W32 COCO e2e model, its final-layer adjustment)."""
    sd: dict[str, torch.Tensor] = {}
    for i, (name, shape, *_) in enumerate(keys):
        shape = tuple(shape)
        rng = np.random.default_rng([seed, i])
        if name.endswith("num_batches_tracked"):
            sd[name] = torch.tensor(0, dtype=torch.int64)
            continue
        if e2e_adjust and name == "head_heatmap.1.weight":
            v = rng.normal(0, 1e-4 / np.sqrt(np.prod(shape[1:])), shape)
            v[-1] = np.abs(v[-1])
        elif e2e_adjust and name.startswith("offset_final_layer.") and name.endswith(".weight"):
            v = rng.normal(0, 1e-3 / np.sqrt(np.prod(shape[1:])), shape)
        elif name.endswith("running_mean"):
            v = rng.normal(0, 0.1, shape)
        elif name.endswith("running_var") or (len(shape) == 1 and name.endswith("weight")):
            v = rng.uniform(0.5, 1.5, shape)
        elif len(shape) == 1 and name.endswith("bias"):
            v = rng.normal(0, 0.05, shape)
        elif len(shape) >= 2:
            v = rng.normal(0, 1 / np.sqrt(np.prod(shape[1:])), shape)
        else:
            raise ValueError(f"no recipe rule for {name} {shape}")
        sd[name] = torch.from_numpy(np.asarray(v).astype(np.float32))
    return sd


@pytest.mark.parametrize("keys_file", sorted(CONFIGS))
def test_key_layout_and_parameters(dekr_dir: Path, keys_file: str) -> None:
    params, count = CONFIGS[keys_file]
    keys = json.loads((dekr_dir / keys_file).read_text())
    net = build_net("dekr", params)
    assert [(k, list(v.shape)) for k, v in net.state_dict().items()] == [(k[0], k[1]) for k in keys]
    assert sum(p.numel() for p in net.parameters()) == count
    assert sum(k.endswith("regular_matrix") for k, _ in net.state_dict().items()) == 2 * params["num_joints"]


def test_official_outputs_on_the_e2e_photo(dekr_dir: Path) -> None:
    keys = json.loads((dekr_dir / "keys_dekr_w32_coco.json").read_text())
    net = build_net("dekr", CONFIGS["keys_dekr_w32_coco.json"][0]).eval()
    net.load_state_dict(recipe(keys, _seed(dekr_dir), e2e_adjust=True), strict=True)
    e = np.load(dekr_dir / "e2e_w32_coco.npz")
    rgb = e["img0_image_resized"].astype(np.float32) / 255.0
    x = (rgb - np.array([0.485, 0.456, 0.406], np.float32)) / np.array([0.229, 0.224, 0.225], np.float32)
    x = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]
    assert float(x.double().sum()) == pytest.approx(float(e["img0_input_tensor_sum"]), rel=1e-6)
    flipped = torch.flip(x, [3])
    flipped[:, :, :, :-3] = flipped[:, :, :, 3:].clone()  # the official input shift of the flipped pass
    with torch.inference_mode():
        for inp, sfx in ((x, ""), (flipped, "_flip")):
            heatmap, offset = net(inp)
            for got, key in ((heatmap, f"img0_net_heatmap{sfx}_sub4"), (offset, f"img0_net_offset{sfx}_sub4")):
                ref = e[key]
                span = float(ref.max() - ref.min())
                np.testing.assert_allclose(got[:, :, ::4, ::4].numpy(), ref, atol=1e-4 * span, rtol=0, err_msg=key)
            centre = e[f"img0_net_centre{sfx}"]
            np.testing.assert_allclose(heatmap[0, -1].numpy(), centre, atol=1e-4 * float(centre.max() - centre.min()), rtol=0)


def test_official_test_path_end_to_end(dekr_dir: Path, tmp_path: Path) -> None:
    """The 4 COCO photos through the public pipeline API (``PosePipeline.run`` without boxes on the bottom-up
    estimator of the ``dekr_w32_512_coco`` card: resize, flip test with the +3 px shift as one batch of 2,
    decode, pose NMS, rescoring) with the recipe W32 network and rescoring net, loaded from files as
    checkpoints are: the results file the official code wrote."""
    import hashlib

    import cv2

    from service.codecs.dekr_decode import inference_resize
    from service.pipeline.bottomup import BottomUpEstimator
    from service.pipeline.card import load_card
    from service.pipeline.pipeline import PosePipeline
    from service.schemas import PoseOptions

    seed = _seed(dekr_dir)
    torch.save(recipe(json.loads((dekr_dir / "keys_dekr_w32_coco.json").read_text()), seed, e2e_adjust=True),
               tmp_path / "dekr.pth")  # fmt: skip
    torch.save(recipe(json.loads((dekr_dir / "keys_rescore_coco.json").read_text()), seed), tmp_path / "rescore.pth")
    card = load_card("dekr_w32_512_coco")
    est = BottomUpEstimator.from_card(card, tmp_path / "dekr.pth", rescore_weights=tmp_path / "rescore.pth")
    pipe = PosePipeline(est)
    e = np.load(dekr_dir / "e2e_w32_coco.npz")
    results = json.loads((dekr_dir / "e2e_results.json").read_text())
    start = 0
    for i, name in enumerate(e["files"]):
        bgr = cv2.imread(str(dekr_dir.parent.parent / "data" / "coco_samples" / str(name)),
                         cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)  # fmt: skip
        rgb = np.ascontiguousarray(bgr[..., ::-1])
        resized, center, scale = inference_resize(rgb, est.decode_config.input_size)
        assert hashlib.sha256(np.ascontiguousarray(resized).tobytes()).hexdigest() == str(e[f"img{i}_image_resized_sha256"])
        np.testing.assert_array_equal(center, e[f"img{i}_center"])
        np.testing.assert_allclose(scale, e[f"img{i}_scale_resized"], rtol=1e-12)
        (res,) = pipe.run([rgb], [None], PoseOptions(flip=True))
        assert res.boxes_source == "none" and res.model == card.name
        ref = results[start : start + len(res.persons)]
        start += len(res.persons)
        assert len(res.persons) == len(e[f"img{i}_final_poses"]) and all(r["image_id"] == int(str(name)[-16:-4]) for r in ref)
        got = np.stack([p.keypoints for p in res.persons])
        np.testing.assert_allclose(got, e[f"img{i}_final_poses"], atol=0.05, rtol=0)
        np.testing.assert_allclose(got.reshape(len(got), -1), np.array([r["keypoints"] for r in ref]), atol=0.05, rtol=0)
        np.testing.assert_allclose([p.score for p in res.persons], [r["score"] for r in ref], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose([p.bbox for p in res.persons], [r["bbox"] for r in ref], atol=0.05)
    assert start == len(results)
