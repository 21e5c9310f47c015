"""Crops are bit-exact with the official ones (OpenCV < 5, official matrix construction)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from service.pipeline.crop import normalise, warp_crops
from service.pipeline.geometry import box_to_center_scale, get_affine_transform


def test_opencv_is_below_5():
    assert int(cv2.__version__.split(".")[0]) < 5, (
        "OpenCV >= 5 changed uint8 warpAffine; parity needs opencv<5"
    )


@pytest.mark.parametrize("size", ["256x192", "384x288"])
@pytest.mark.parametrize("convention", ["darkpose", "hrnet"])
def test_crops_bit_exact(crop_cases, size, convention):
    h, w = (int(v) for v in size.split("x"))
    prefix = "" if convention == "darkpose" else "hrnet_"
    image_rgb = np.ascontiguousarray(crop_cases["image_bgr"][..., ::-1])
    boxes, rots = crop_cases["boxes_xywh"], crop_cases["rot"]
    center, scale = box_to_center_scale(boxes, (w, h), convention)
    if convention == "darkpose":
        np.testing.assert_allclose(center, crop_cases[f"center_{size}"], atol=1e-4)
        np.testing.assert_allclose(scale, crop_cases[f"scale_{size}"], rtol=1e-6)
    mats = np.stack(
        [
            get_affine_transform(center[i], scale[i], float(rots[i]), (w, h), convention=convention)
            for i in range(len(boxes))
        ]
    )
    np.testing.assert_allclose(mats, crop_cases[f"trans_{prefix}{size}"], rtol=1e-5, atol=1e-3)
    crops = warp_crops(image_rgb, mats, (w, h))
    np.testing.assert_array_equal(crops, crop_cases[f"crops_rgb_{prefix}{size}"])


@pytest.mark.parametrize("size", ["256x192"])
def test_normalised_input(crop_cases, size):
    x = normalise(
        torch.from_numpy(crop_cases[f"crops_rgb_{size}"][:2]), (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    )
    np.testing.assert_allclose(x.numpy(), crop_cases[f"input_tensor_{size}_first2"], atol=1e-6, rtol=0)
