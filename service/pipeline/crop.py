"""Person crops: a crop stage (OpenCV ``warpAffine``, bit-exact with the official crops on OpenCV < 5, is
the reference implementation) and normalisation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import cv2
import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor


def warp_crops(
    image_rgb: NDArray[np.uint8], matrices: NDArray[np.float64], input_size: tuple[int, int]
) -> NDArray[np.uint8]:
    """Crop every person of one image.

    Args:
        image_rgb: ``(H, W, 3)`` uint8 RGB image.
        matrices: ``(M, 2, 3)`` image → crop affine matrices (official construction).
        input_size: ``(W_in, H_in)``.

    Returns:
        ``(M, H_in, W_in, 3)`` uint8 crops (bilinear, constant-0 border).
    """
    w, h = input_size
    out = np.empty((len(matrices), h, w, 3), dtype=np.uint8)
    for i, m in enumerate(matrices):
        out[i] = cv2.warpAffine(image_rgb, m, (w, h), flags=cv2.INTER_LINEAR)
    return out


class CropStage(Protocol):
    """Warps the persons of one image to the network's input size (image → crop affine, official geometry).

    A device-side implementation (affine grid + bilinear sampling on the accelerator) plugs in here; the
    reference is :class:`OpenCVCrop`.
    """

    name: str

    def warp(
        self, image_rgb: NDArray[np.uint8], matrices: NDArray[np.float64], input_size: tuple[int, int]
    ) -> NDArray[np.uint8]:
        """``(H, W, 3)`` uint8 RGB, ``(M, 2, 3)`` matrices, ``(W_in, H_in)`` → ``(M, H_in, W_in, 3)`` uint8."""
        ...


class OpenCVCrop:
    """The reference crop stage: :func:`warp_crops` on the CPU."""

    name = "opencv"

    def warp(
        self, image_rgb: NDArray[np.uint8], matrices: NDArray[np.float64], input_size: tuple[int, int]
    ) -> NDArray[np.uint8]:
        return warp_crops(image_rgb, matrices, input_size)


def normalise(crops: Tensor, mean: Sequence[float], std: Sequence[float]) -> Tensor:
    """torchvision ``ToTensor`` + ``Normalize`` on a batch.

    Args:
        crops: ``(N, H, W, 3)`` uint8 RGB on any device.

    Returns:
        ``(N, 3, H, W)`` float32, ``(x/255 - mean)/std`` per channel.
    """
    x = crops.permute(0, 3, 1, 2).to(torch.float32).div(255)
    m = torch.as_tensor(mean, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    s = torch.as_tensor(std, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    return x.sub(m).div(s)
