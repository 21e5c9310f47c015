"""Crops on a torch device (``TorchCrop``, the GPU path; run here on the CPU device) against the reference:
OpenCV 4's ``warpAffine`` and the official crops of the darkpose fixtures (rotated boxes included). The
device path reproduces OpenCV 4's fixed-point arithmetic (1/32-pixel grid, 15-bit weights), so the check
is bit equality on every crop."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from service.pipeline.crop import OpenCVCrop, TorchCrop
from service.pipeline.geometry import affine_matrices, box_to_center_scale
from service.pipeline.image import read_image_file


@pytest.mark.parametrize("size", ["256x192", "384x288"])
@pytest.mark.parametrize("prefix", ["", "hrnet_"])
def test_official_crops_bit_exact(crop_cases, size: str, prefix: str) -> None:
    h, w = (int(v) for v in size.split("x"))
    image_rgb = np.ascontiguousarray(crop_cases["image_bgr"][..., ::-1])
    got = TorchCrop("cpu").warp(image_rgb, crop_cases[f"trans_{prefix}{size}"], (w, h))
    assert isinstance(got, torch.Tensor) and got.dtype == torch.uint8
    np.testing.assert_array_equal(got.numpy(), crop_cases[f"crops_rgb_{prefix}{size}"])


def test_real_photos_bit_exact_with_opencv(data_dir) -> None:
    """The 118 detection boxes of the zoo e2e case (tiny boxes upsampled ~50x, large ones downsampled,
    boxes crossing the border) on the 4 COCO photos, at two sizes and both conventions."""
    common = np.load(data_dir.parent / "fixtures" / "zoo" / "e2e_common.npz")
    for i, name in enumerate(common["image_files"]):
        image = read_image_file(str(data_dir / "coco_samples" / str(name)), honour_exif=False)
        sel = np.nonzero(common["image_index"] == i)[0]
        for size, conv in (((192, 256), "darkpose"), ((96, 128), "hrnet")):
            center, scale = box_to_center_scale(common["boxes_xywh"][sel], size, conv)
            m = affine_matrices(center, scale, size, convention=conv)
            got = TorchCrop("cpu").warp(image, m, size)
            np.testing.assert_array_equal(got.numpy(), OpenCVCrop().warp(image, m, size), err_msg=f"{name} {size}")
    assert tuple(TorchCrop("cpu").warp(image, m[:0], size).shape) == (0, size[1], size[0], 3)


def test_device_crops_through_the_estimator(small_card, small_weights, data_dir) -> None:
    """The estimator takes device crops (a tensor, BGR cards flip it there) and gives the same persons."""
    from service.pipeline.estimator import PoseEstimator
    from service.schemas import PoseOptions

    image = read_image_file(str(data_dir / "coco_samples" / "000000196141.jpg"), honour_exif=False)
    boxes = np.array([[60.0, 40.0, 180.0, 260.0, 0.9], [250.0, 60.0, 120.0, 250.0, 0.8]])
    ref = PoseEstimator.from_card(small_card, small_weights).estimate([image], [boxes], PoseOptions(oks_nms=False))
    dev = PoseEstimator.from_card(small_card, small_weights, crop_stage=TorchCrop("cpu"))
    got = dev.estimate([image], [boxes], PoseOptions(oks_nms=False))
    assert [p.box_index for p in got[0].persons] == [p.box_index for p in ref[0].persons]
    for a, b in zip(got[0].persons, ref[0].persons, strict=True):
        np.testing.assert_array_equal(a.keypoints, b.keypoints)
