"""Person crops: a crop stage (OpenCV ``warpAffine``, bit-exact with the official crops on OpenCV < 5, is
the reference implementation; :class:`TorchCrop` warps on the accelerator) and normalisation.
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

    The reference is :class:`OpenCVCrop` (NumPy out); :class:`TorchCrop` samples on the accelerator (a uint8
    tensor on its device out, so the crops never travel back to the host).
    """

    name: str

    def warp(
        self, image_rgb: NDArray[np.uint8], matrices: NDArray[np.float64], input_size: tuple[int, int]
    ) -> NDArray[np.uint8] | Tensor:
        """``(H, W, 3)`` uint8 RGB, ``(M, 2, 3)`` matrices, ``(W_in, H_in)`` → ``(M, H_in, W_in, 3)`` uint8."""
        ...


class OpenCVCrop:
    """The reference crop stage: :func:`warp_crops` on the CPU."""

    name = "opencv"

    def warp(
        self, image_rgb: NDArray[np.uint8], matrices: NDArray[np.float64], input_size: tuple[int, int]
    ) -> NDArray[np.uint8]:
        return warp_crops(image_rgb, matrices, input_size)


class TorchCrop:
    """Crops computed on a torch device with OpenCV 4's own fixed-point arithmetic, so they equal
    ``cv2.warpAffine(..., INTER_LINEAR)`` bit for bit while the image is uploaded once and the crops never
    come back to the host.

    What OpenCV 4 does for uint8 bilinear warps (``imgwarp.cpp``), reproduced in integer tensor ops:

    * the 2×3 matrix is inverted in float64 as ``cv::warpAffine`` inverts it;
    * source coordinates are fixed point with 10 fractional bits: ``adelta[x] = round(M0·x·1024)``,
      ``X0[y] = round((M1·y + M2)·1024) + 16`` (``cvRound``: half to even), ``X = (X0 + adelta) >> 5`` (a
      1/32-pixel grid); the integer part is ``X >> 5``, the fraction index ``X & 31`` (the same for y);
    * interpolation weights come from the 32×32 table of 15-bit products ``(32−fy)(32−fx)·32`` ...; its
      first entry saturates to 32767 and OpenCV's sum fix-up gives the 1 to the opposite corner;
    * a pixel is ``(Σ S·w + 2^14) >> 15`` with neighbours outside the image read as the border value 0.

    OpenCV 5 computes warps in floating point; this class reproduces OpenCV 4 (the official crops), which
    ``posesvc`` requires (``opencv-python<5``).
    """

    name = "device"

    def __init__(self, device: str | torch.device) -> None:
        self.device = torch.device(device)

    @staticmethod
    def _inverse(m: NDArray[np.float64]) -> NDArray[np.float64]:
        """``cv::warpAffine``'s own inversion of the image → crop matrix (float64, same operation order)."""
        m0, m1, m2, m3, m4, m5 = (float(v) for v in np.asarray(m, np.float64).ravel())
        d = m0 * m4 - m1 * m3
        d = 1.0 / d if d != 0 else 0.0
        a11, a22 = m4 * d, m0 * d
        m0, m1, m3, m4 = a11, m1 * -d, m3 * -d, a22
        b1 = -m0 * m2 - m1 * m5
        b2 = -m3 * m2 - m4 * m5
        return np.array([m0, m1, b1, m3, m4, b2], dtype=np.float64)

    def warp(
        self, image_rgb: NDArray[np.uint8], matrices: NDArray[np.float64], input_size: tuple[int, int]
    ) -> Tensor:
        w, h = input_size
        n = len(matrices)
        dev = self.device
        if n == 0:
            return torch.zeros((0, h, w, 3), dtype=torch.uint8, device=dev)
        img = torch.from_numpy(np.ascontiguousarray(image_rgb)).to(dev)
        rows, cols = int(img.shape[0]), int(img.shape[1])
        flat = img.reshape(rows * cols, 3).to(torch.int32)
        inv = torch.from_numpy(np.stack([self._inverse(m) for m in matrices])).to(dev)  # (n, 6) float64
        xs = torch.arange(w, dtype=torch.float64, device=dev)
        ys = torch.arange(h, dtype=torch.float64, device=dev)
        adelta = torch.round(inv[:, 0:1] * xs * 1024).to(torch.int64)  # (n, w)
        bdelta = torch.round(inv[:, 3:4] * xs * 1024).to(torch.int64)
        x0 = torch.round((inv[:, 1:2] * ys + inv[:, 2:3]) * 1024).to(torch.int64) + 16  # (n, h)
        y0 = torch.round((inv[:, 4:5] * ys + inv[:, 5:6]) * 1024).to(torch.int64) + 16
        big_x = (x0[:, :, None] + adelta[:, None, :]) >> 5  # (n, h, w), 1/32 px
        big_y = (y0[:, :, None] + bdelta[:, None, :]) >> 5
        sx, fx = big_x >> 5, big_x & 31
        sy, fy = big_y >> 5, big_y & 31
        w00 = (32 - fy) * (32 - fx) * 32
        w01 = (32 - fy) * fx * 32
        w10 = fy * (32 - fx) * 32
        w11 = fy * fx * 32
        corner = (fx == 0) & (fy == 0)  # the table's saturated entry: 32767 and 1
        w00 = torch.where(corner, torch.full_like(w00, 32767), w00)
        w11 = torch.where(corner, torch.ones_like(w11), w11)
        acc = torch.full((n, h, w, 3), 1 << 14, dtype=torch.int64, device=dev)
        for dy, dx, wt in ((0, 0, w00), (0, 1, w01), (1, 0, w10), (1, 1, w11)):
            px, py = sx + dx, sy + dy
            inside = (px >= 0) & (px < cols) & (py >= 0) & (py < rows)
            idx = (py.clamp(0, rows - 1) * cols + px.clamp(0, cols - 1)).reshape(-1)
            vals = flat.index_select(0, idx).reshape(n, h, w, 3).to(torch.int64)
            acc += vals * (wt * inside)[..., None]
        return (acc >> 15).clamp_(0, 255).to(torch.uint8)


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
