"""The bottom-up estimator kind: the whole image → network → persons (DEKR), no detector and no boxes.

Per image, the official single-scale test path (``service.codecs.dekr_decode``): resize so the short side is
the card's ``[bottomup] input_size`` and the long side a multiple of 64, normalise, one forward of
``[image, flipped image shifted 3 px]`` as a batch of 2 (flip test) or of the image alone, decode (centres,
proposals, pose NMS), back to image pixels, optional rescoring. Each person's box is the extent of its
keypoints (as the official results file writes it); ``box_index`` is its rank in the pose-NMS keep order.
The images of an engine batch are grouped by their padded (resized) size: each group is one forward of
``2·n`` images with flip test (``n`` without), decoded image by image.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray
from torch import nn

from ..codecs.dekr_decode import (
    FLIP_COCO,
    FLIP_CROWDPOSE,
    LINKS_COCO,
    LINKS_CROWDPOSE,
    DekrConfig,
    decode,
    flip_input,
    inference_resize,
)
from ..errors import BoxesNotSupported, WeightsError
from ..estimators.base import Counters, WarmupInput
from ..nets import build_net, load_checkpoint_file
from ..nets.rescore import PredictOKSNet, rescore_input_channels
from ..schemas import BoxesSource, Person, PoseOptions, PoseResult
from .card import ModelCard
from .crop import normalise
from .estimator import EstimatorConfig


def dekr_config(card: ModelCard) -> DekrConfig:
    """The decode settings of a bottom-up card (the official COCO / CrowdPose defaults, the card's overrides)."""
    crowd = card.keypoints.name == "crowdpose14"
    b = card.bottomup
    return DekrConfig(
        flip_index=FLIP_CROWDPOSE if crowd else FLIP_COCO,
        links=LINKS_CROWDPOSE if crowd else LINKS_COCO,
        input_size=int(b.get("input_size", min(card.input_size))),
        max_people=int(b.get("max_people", 30)),
        keypoint_threshold=float(b.get("keypoint_threshold", 0.01)),
        nms_thre=float(b.get("nms_thre", 0.05)),
        nms_num=int(b.get("nms_num", 7 if crowd else 8)),
    )


class BottomUpEstimator:
    """A bottom-up model (DEKR) on one device; ``needs_boxes = False`` (the pipeline skips the detector)."""

    def __init__(
        self,
        card: ModelCard,
        net: nn.Module,
        *,
        trained: bool,
        device: str | torch.device = "cpu",
        config: EstimatorConfig | None = None,
        rescore: nn.Module | None = None,
    ) -> None:
        self.card = card
        self.config = config or EstimatorConfig()
        self.trained = trained
        self.device = torch.device(device)
        self.net = net.eval().to(self.device)
        self.rescore = rescore.eval() if rescore is not None else None
        self.decode_config = dekr_config(card)
        self.needs_boxes = False
        self.backend_note = ""
        self.forward_count = 0
        self.image_count = 0

    @classmethod
    def from_card(
        cls,
        card: ModelCard,
        weights: str | Path | None,
        *,
        device: str | torch.device = "cpu",
        config: EstimatorConfig | None = None,
        allow_untrained: bool = False,
        rescore_weights: str | Path | None = None,
    ) -> BottomUpEstimator:
        """The card's network with ``weights`` (strict) and, when given, the rescoring MLP's weights (strict);
        without weights only when ``allow_untrained`` (seeded from the card; no rescoring then)."""
        net = build_net(card.architecture, card.arch_params, seed_key=card.name)
        if weights is not None:
            load_checkpoint_file(net, weights, card.checkpoint.format)
        elif not allow_untrained:
            raise WeightsError(f"no weights given for model card {card.name!r} (pass allow_untrained for a smoke run)")
        rescore = None
        if rescore_weights is not None:
            cfg = dekr_config(card)
            rescore = PredictOKSNet(rescore_input_channels(card.num_joints, len(cfg.links[0])))
            load_checkpoint_file(rescore, rescore_weights, "darkpose")
        return cls(card, net, trained=weights is not None, device=device, config=config, rescore=rescore)

    def counters(self) -> Counters:
        return Counters(self.forward_count, self.image_count)

    def warmup_inputs(self, max_batch: int) -> list[WarmupInput]:
        rng = np.random.default_rng(0)
        s = self.decode_config.input_size
        return [WarmupInput(rng.integers(0, 256, size=(s, s, 3), dtype=np.uint8), None)]

    def _persons(self, image: NDArray[np.uint8], poses: NDArray[np.float32], scores: NDArray[np.float64],
                 opt: PoseOptions, stage: dict[str, float]) -> PoseResult:  # fmt: skip
        persons = []
        for i, (pose, score) in enumerate(zip(poses, scores, strict=True)):
            x0, y0 = float(pose[:, 0].min()), float(pose[:, 1].min())
            bbox = (x0, y0, float(pose[:, 0].max()) - x0, float(pose[:, 1].max()) - y0)
            persons.append(Person(bbox=bbox, bbox_score=float(score), score=float(score), keypoints=pose.copy(),
                                  box_index=i))  # fmt: skip
        if opt.min_score > 0:  # DEKR's scores have no sigmoid and can be negative: the default 0 keeps everyone
            persons = [p for p in persons if p.score >= opt.min_score]
        if opt.max_persons is not None:
            persons = sorted(persons, key=lambda p: -p.score)[: opt.max_persons]
        return PoseResult(
            image_size=(int(image.shape[1]), int(image.shape[0])), persons=tuple(persons), model=self.card.name,
            trained=self.trained, boxes_source="none", timings=dict(stage), joint_names=self.card.joint_names,
        )  # fmt: skip

    def estimate(
        self,
        images: Sequence[NDArray[np.uint8]],
        boxes: Sequence[NDArray[np.floating] | None],
        options: Sequence[PoseOptions] | PoseOptions | None = None,
        sources: Sequence[BoxesSource] | None = None,
        timings: dict[str, float] | None = None,
    ) -> list[PoseResult]:
        """One result per image; any image with boxes is refused (:class:`BoxesNotSupported`)."""
        if any(b is not None for b in boxes):
            raise BoxesNotSupported(f"{self.card.name} is a bottom-up model: it finds the persons itself")
        opts = [options] * len(images) if options is None or isinstance(options, PoseOptions) else list(options)
        opts = [o or PoseOptions() for o in opts]
        cfg = self.decode_config
        stage: dict[str, float] = {}
        t0 = time.perf_counter()
        prepared = [inference_resize(im, cfg.input_size) for im in images]
        # images whose padded (resized) size and flip setting agree share one forward
        groups: dict[tuple[int, int, bool], list[int]] = {}
        for n, (resized, _, _) in enumerate(prepared):
            flip = self.config.flip_default if opts[n].flip is None else bool(opts[n].flip)
            groups.setdefault((resized.shape[0], resized.shape[1], flip), []).append(n)
        stage["crop"] = time.perf_counter() - t0
        results: list[PoseResult | None] = [None] * len(images)
        for (_, _, flip), members in groups.items():
            t1 = time.perf_counter()
            x = normalise(torch.from_numpy(np.stack([prepared[n][0] for n in members])).to(self.device),
                          self.card.mean, self.card.std)  # fmt: skip
            with torch.inference_mode():
                heatmap, offset = self.net(torch.cat([x, flip_input(x)]) if flip else x)
            self.forward_count += 1
            t2 = time.perf_counter()
            stage["pose_forward"] = stage.get("pose_forward", 0.0) + t2 - t1
            m = len(members)
            for g, n in enumerate(members):
                resized, center, scale = prepared[n]
                hm_f, off_f = (heatmap[m + g : m + g + 1], offset[m + g : m + g + 1]) if flip else (None, None)
                out = decode(heatmap[g : g + 1].float(), offset[g : g + 1].float(), hm_f, off_f, cfg, center, scale,
                             (resized.shape[1], resized.shape[0]), self.rescore)  # fmt: skip
                results[n] = self._persons(images[n], out.poses, out.scores, opts[n], stage)
            stage["keypoint_decode"] = stage.get("keypoint_decode", 0.0) + time.perf_counter() - t2
        self.image_count += len(images)
        if timings is not None:
            timings.update(stage)
        return [r for r in results if r is not None]
