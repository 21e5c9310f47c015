"""Model-zoo parity fixtures (``../shared/fixtures/zoo``, or ``POSESVC_ZOO_FIXTURES`` for another set of the same
format) and the fixture set's weights recipe: every network is rebuilt from its official key list and the seed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
ZOO = Path(os.environ.get("POSESVC_ZOO_FIXTURES", REPO.parent / "shared" / "fixtures" / "zoo"))


@pytest.fixture(scope="session")
def zoo_dir() -> Path:
    if not ZOO.is_dir():
        pytest.fail(f"zoo fixtures not found at {ZOO} (set POSESVC_ZOO_FIXTURES)")
    return ZOO


@pytest.fixture(scope="session")
def zoo_seed(zoo_dir: Path) -> int:
    return int(json.loads((zoo_dir / "summary.json").read_text())["seed"])


def recipe_state_dict(keys: list[list], seed: int, nd_scale: float = 1.0) -> dict[str, torch.Tensor]:
    """The fixture README's weights recipe: key ``i`` (official order) drawn from ``default_rng([seed, i])``."""
    sd: dict[str, torch.Tensor] = {}
    for i, entry in enumerate(keys):
        name, shape = entry[0], tuple(entry[1])
        rng = np.random.default_rng([seed, i])
        if name.endswith("num_batches_tracked"):
            sd[name] = torch.tensor(0, dtype=torch.int64)
            continue
        if name.endswith("running_mean"):
            v = rng.normal(0, 0.1, shape)
        elif name.endswith("running_var") or (len(shape) == 1 and name.endswith("weight")):
            v = rng.uniform(0.5, 1.5, shape)
        elif len(shape) == 1 and name.endswith("bias"):
            v = rng.normal(0, 0.05, shape)
        elif len(shape) >= 2:
            v = rng.normal(0, 1 / np.sqrt(np.prod(shape[1:])), shape) * nd_scale
        else:
            raise ValueError(f"the recipe has no rule for {name} {shape}")
        sd[name] = torch.from_numpy(np.asarray(v).astype(np.float32))
    return sd


def check_official_test_path(zoo_dir: Path, model: str, estimator) -> None:
    """Run the fixture set's 4 images and 118 detection boxes through ``PosePipeline.run`` (flip test, DARK,
    rescoring, OKS-NMS) and compare with ``e2e_<model>``: the kept boxes in results order exactly, scores and
    maxima to 1e-4, keypoints to 5e-3 px where the official step is well conditioned (a clear argmax, a sub-pixel
    Taylor step; elsewhere the README calls the decoded value round-off sensitive)."""
    import json

    from service.pipeline.geometry import affine_matrices, apply_affine
    from service.pipeline.image import read_image_file
    from service.pipeline.pipeline import PosePipeline
    from service.schemas import PoseOptions

    common = np.load(zoo_dir / "e2e_common.npz")
    e = np.load(zoo_dir / f"e2e_{model}.npz")
    results_ref = json.loads((zoo_dir / f"e2e_{model}_results.json").read_text())
    root = zoo_dir.parent.parent / "data" / "coco_samples"
    images = [read_image_file(str(root / str(n)), honour_exif=False) for n in common["image_files"]]
    boxes = []
    for i in range(len(images)):
        sel = np.nonzero(common["image_index"] == i)[0]
        boxes.append(np.concatenate([common["boxes_xywh"][sel], common["box_scores"][sel, None]], axis=1))
    out = PosePipeline(estimator).run(images, boxes, PoseOptions(flip=True))
    ours = []
    for i, res in enumerate(out):
        sel = np.nonzero(common["image_index"] == i)[0]
        ours += [(int(sel[p.box_index]), p) for p in res.persons]
    assert [g for g, _ in ours] == e["nms_keep"].tolist()
    assert len(ours) == len(results_ref)
    w, h = estimator.card.heatmap_size
    fwd = affine_matrices(common["center"], common["scale"], (w, h), inv=False)
    step = np.abs(apply_affine(e["preds"].astype(np.float64), fwd) - e["coords_argmax"]).max(-1)
    wc = (e["argmax_margin"] > 1e-4) & (step <= 1.0)
    for (g, p), ref in zip(ours, results_ref, strict=True):
        assert abs(p.score - ref["score"]) <= 1e-4, (g, p.score, ref["score"])
        np.testing.assert_allclose(p.keypoints[:, 2], e["maxvals"][g, :, 0], atol=1e-4, rtol=0)
        err = np.abs(p.keypoints[:, :2] - e["preds"][g]).max(-1)
        assert err[wc[g]].max(initial=0.0) <= 5e-3, (g, err[wc[g]].max())
    # not vacuous: hundreds of joints are compared to 5e-3 px (62 % for R50 and 86 % for W32 on the public
    # set; random weights give large Taylor steps elsewhere), with room for a held-back set's other seed
    assert wc[e["nms_keep"]].sum() >= 200 and wc[e["nms_keep"]].mean() > 0.3
