"""DEKR's rescoring network (``lib/models/predictOKS.py``): an MLP from pose features to a predicted OKS, official
key layout (``l1``, ``l2``, ``l3``). Input ``(M, F)`` features (74 for COCO, 59 for CrowdPose), output ``(M, 1)``."""

from __future__ import annotations

from torch import Tensor, nn


class PredictOKSNet(nn.Module):
    def __init__(self, input_channel: int, hidden: int = 256) -> None:
        super().__init__()
        self.l1 = nn.Linear(input_channel, hidden, bias=True)
        self.l2 = nn.Linear(hidden, hidden, bias=True)
        self.l3 = nn.Linear(hidden, 1, bias=True)
        self.relu = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.l3(self.relu(self.l2(self.relu(self.l1(x)))))
        return out


def rescore_input_channels(num_joints: int, num_links: int) -> int:
    """Feature width of :func:`service.codecs.dekr_decode.rescore_feature`: 2 per limb vector, 1 per limb length,
    1 per joint score."""
    return 3 * num_links + num_joints


__all__ = ["PredictOKSNet", "rescore_input_channels"]
