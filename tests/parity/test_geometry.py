"""Box → center/scale, the affine matrices and ``transform_preds`` against the official values."""

from __future__ import annotations

import json

import numpy as np
import pytest

from service.pipeline.geometry import apply_affine, box_to_center_scale, get_affine_transform


@pytest.fixture(scope="module")
def aff(fixtures_dir):
    return json.loads((fixtures_dir / "affine_cases.json").read_text())


def test_box_to_center_scale(aff):
    for c in aff["box_to_center_scale"]:
        for conv, ck, sk in (("darkpose", "center", "scale"), ("hrnet", "center_hrnet", "scale_hrnet")):
            center, scale = box_to_center_scale(np.array([c["box_xywh"]]), tuple(c["image_size"]), conv)
            assert center.dtype == np.float32 and scale.dtype == np.float32
            np.testing.assert_allclose(center[0], c[ck], atol=1e-4, rtol=0)
            np.testing.assert_allclose(scale[0], c[sk], rtol=1e-6, atol=0)


def test_get_affine_transform(aff):
    for c in aff["get_affine_transform"]:
        for conv, key in (("darkpose", "matrix"), ("hrnet", "matrix_hrnet")):
            m = get_affine_transform(
                np.array(c["center"], np.float32), np.array(c["scale"], np.float32), c["rot"],
                tuple(c["output_size"]), tuple(c["shift"]), bool(c["inv"]), conv,
            )  # fmt: skip
            ref = np.array(c[key])
            np.testing.assert_allclose(m[:, :2], ref[:, :2], rtol=1e-5, atol=1e-9)
            np.testing.assert_allclose(m[:, 2], ref[:, 2], rtol=1e-5, atol=1e-3)


def test_transform_preds(aff):
    for c in aff["transform_preds"]:
        for conv, key in (("darkpose", "image_coords"), ("hrnet", "image_coords_hrnet")):
            inv = get_affine_transform(
                np.array(c["center"], np.float32), np.array(c["scale"], np.float32), 0.0,
                tuple(c["heatmap_size"]), inv=True, convention=conv,
            )  # fmt: skip
            got = apply_affine(np.array(c["coords"])[None], inv[None])[0]
            np.testing.assert_allclose(got, np.array(c[key]), atol=1e-4, rtol=0)
