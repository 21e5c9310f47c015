"""The top-down pose estimator: boxes → crops → one 2N forward (flip test) → decode → image keypoints.

This is plain synchronous torch/numpy code (no asyncio). The serving engine calls :meth:`PoseEstimator.estimate`
(through :class:`~service.pipeline.pipeline.PosePipeline`) on a batch of images; crops of all images are pooled
and run in chunks of ``max_batch_crops``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor, nn

from ..backends import Backend, BackendOptions, BackendUnavailable, ExportSpec, load_backend
from ..backends.select import select_backend
from ..codecs import HeatmapCodec
from ..errors import BackendError, InvalidInput
from ..estimators.base import Counters, WarmupInput
from ..nets import build_net, load_checkpoint_file
from ..schemas import BoxesSource, Person, PoseOptions, PoseResult
from .card import ModelCard
from .crop import CropStage, OpenCVCrop, normalise
from .flip import merge_flip
from .geometry import affine_matrices, apply_affine, box_to_center_scale
from .inputs import validate_boxes
from .postprocess import oks_nms, rescore

Precision = Literal["fp32", "bf16", "fp16"]


@dataclass(frozen=True)
class EstimatorConfig:
    """Compute settings of one estimator.

    Attributes:
        max_batch_crops: person crops per forward chunk (the forward batch is twice this with flip).
        precision: ``fp32``; ``bf16`` autocast (CPU or CUDA); ``fp16`` autocast (CUDA only).
        channels_last: use NHWC memory format for the network.
        flip_default: flip test when a request does not say.
        rescore_threshold: keypoint scores above this enter the person score (0.2).
        nms_threshold: OKS-NMS threshold (0.9).
        max_offset: optional DARK safeguard, heatmap px (``None`` = official, unbounded).
    """

    max_batch_crops: int = 32
    precision: Precision = "fp32"
    channels_last: bool = False
    flip_default: bool = True
    rescore_threshold: float = 0.2
    nms_threshold: float = 0.9
    max_offset: float | None = None


@dataclass
class _Prepared:
    """Per-image geometry (M persons)."""

    boxes: NDArray[np.float64]  # (M, 4)
    box_scores: NDArray[np.float64]  # (M,)
    center: NDArray[np.floating]  # (M, 2) float32 from boxes, float64 from a dataset's centres (MPII)
    scale: NDArray[np.floating]  # (M, 2)
    inv: NDArray[np.float64]  # (M, 2, 3) heatmap → image
    areas: NDArray[np.float64]  # (M,)
    crops: NDArray[np.uint8] | Tensor  # (M, H_in, W_in, 3) uint8, host (OpenCV) or device (TorchCrop)


class PoseEstimator:
    """Top-down estimator: crops (a crop stage) → one forward (a backend) with flip test → codec → image
    keypoints, for one model card on one device.

    ``backend``: a loaded :class:`~service.backends.Backend`, or a torch module (run by the ``torch``
    backend with the config's precision and memory format).
    """

    def __init__(
        self,
        card: ModelCard,
        backend: Backend | nn.Module,
        *,
        trained: bool,
        device: str | torch.device = "cpu",
        config: EstimatorConfig | None = None,
        crop_stage: CropStage | None = None,
    ) -> None:
        self.card = card
        self.config = config or EstimatorConfig()
        self.trained = trained
        if isinstance(backend, nn.Module):
            options = BackendOptions(self.config.precision, self.config.channels_last)
            backend = load_backend("torch", backend, device, options)
        self.backend: Backend = backend
        self.device = backend.device
        self.crop_stage: CropStage = crop_stage or OpenCVCrop()
        #: top-down: every image needs person boxes (the client's or the detector's)
        self.needs_boxes = True
        self.codec = HeatmapCodec(card.codec, card.blur_kernel, card.sigma, self.config.max_offset)
        self._perm = card.flip_permutation
        #: Network forwards run so far (one per chunk of ``max_batch_crops`` crops; flip is inside it).
        self.forward_count = 0
        #: Person crops estimated so far.
        self.crop_count = 0
        #: why the backend is not the one asked for (``auto`` fell back), else empty
        self.backend_note = ""
        #: max |backend - torch| of the backend's start-up check (0 for torch itself)
        self.backend_max_diff = 0.0

    def counters(self) -> Counters:
        return Counters(self.forward_count, self.crop_count)

    def warmup_inputs(self, max_batch: int) -> list[WarmupInput]:
        """A synthetic image with 1 and with ``max_batch`` boxes: every forward shape the engine sends."""
        w, h = self.card.input_size
        rng = np.random.default_rng(0)
        image: NDArray[np.uint8] = rng.integers(0, 256, size=(2 * h, 2 * w, 3), dtype=np.uint8)
        box = [w / 2, h / 2, float(w), float(h), 1.0]
        return [WarmupInput(image, np.array([box] * n, dtype=np.float64)) for n in sorted({1, max_batch})]

    @property
    def net(self) -> nn.Module:
        """The torch module behind a torch backend (benchmarks and tests copy it)."""
        net = getattr(self.backend, "net", None)
        if not isinstance(net, nn.Module):
            raise AttributeError(f"the {self.backend.name} backend has no torch module")
        return net

    @classmethod
    def from_card(
        cls,
        card: ModelCard,
        weights: str | Path | None,
        *,
        device: str | torch.device = "cpu",
        config: EstimatorConfig | None = None,
        allow_untrained: bool = False,
        backend: str = "torch",
        threads: int | None = None,
        export_dir: Path | None = None,
        compile: bool = False,
        crop_stage: CropStage | None = None,
    ) -> PoseEstimator:
        """Build the card's net and load ``weights`` strictly (weights-only). Without weights, refuse unless
        ``allow_untrained`` (random initialisation seeded by the card's name, the same in every process;
        results are then marked ``trained=False``).

        ``backend``: ``torch`` (default), ``onnxruntime``, ``openvino``, ``tensorrt`` or ``auto`` (see
        :mod:`service.backends.select`; exported files are cached in ``export_dir``); every backend but torch
        is checked against torch before it is used."""
        net = build_net(card.architecture, card.arch_params, seed_key=card.name)
        if weights is not None:
            load_checkpoint_file(net, weights, card.checkpoint.format)
            trained = True
        elif allow_untrained:
            trained = False
        else:
            from ..errors import WeightsError

            raise WeightsError(
                f"no weights given for model card {card.name!r} (pass allow_untrained for a smoke run)"
            )
        cfg = config or EstimatorConfig()
        key = json.dumps({"architecture": card.architecture, "params": card.arch_params,
                          "input_size": list(card.input_size)}, sort_keys=True, default=str)  # fmt: skip
        spec = ExportSpec(card.name, key, card.input_size, export_dir, max_batch=2 * cfg.max_batch_crops)
        options = BackendOptions(cfg.precision, cfg.channels_last, threads=threads, export=spec, compile=compile)
        try:
            selected = select_backend(backend, net, torch.device(device), options)
        except BackendUnavailable as exc:
            raise BackendError(f"model {card.name}: {exc}") from None
        est = cls(card, selected.backend, trained=trained, config=cfg, crop_stage=crop_stage)
        est.backend_note = selected.note
        est.backend_max_diff = selected.max_diff
        return est

    # ------------------------------------------------------------------ compute
    def forward(self, x: Tensor) -> Tensor:
        """Network forward (the backend): ``(B, 3, H_in, W_in)`` normalised → ``(B, K, H_hm, W_hm)`` float32."""
        out = self.backend.forward(x)[0]
        self.forward_count += 1
        return out

    def heatmaps(self, x: Tensor, flip: bool, timings: dict[str, float] | None = None) -> Tensor:
        """Flip-tested heatmaps for a chunk of normalised crops ``(n, 3, H, W)`` → ``(n, K, h, w)``.

        With ``flip`` this is ONE forward over ``[x, x.flip(-1)]`` (batch 2n), then flip-back and average.
        """
        t0 = time.perf_counter()
        n = x.shape[0]
        out = self.forward(torch.cat([x, x.flip(-1)], dim=0) if flip else x)
        self._sync()
        t1 = time.perf_counter()
        if flip:
            out = merge_flip(out[:n], out[n:], self._perm, self.card.flip_shift)
            self._sync()
        t2 = time.perf_counter()
        if timings is not None:
            timings["pose_forward"] = timings.get("pose_forward", 0.0) + (t1 - t0)
            timings["flip_merge"] = timings.get("flip_merge", 0.0) + (t2 - t1)
        return out

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    def prepare(self, image: NDArray[np.uint8], boxes: NDArray[np.float64]) -> _Prepared:
        """Geometry and crops for one image. ``boxes`` are validated ``(M, 5)``."""
        card = self.card
        center, scale = box_to_center_scale(boxes[:, :4], card.input_size, card.convention, card.padding)
        return self.prepare_at(image, center, scale, boxes)

    def prepare_at(
        self,
        image: NDArray[np.uint8],
        center: NDArray[np.floating],
        scale: NDArray[np.floating],
        boxes: NDArray[np.float64] | None = None,
    ) -> _Prepared:
        """Geometry and crops for one image at given crop centres ``(M, 2)`` (image px) and scales ``(M, 2)``
        (crop size / 200 px, padding included), as a dataset gives them (MPII's annotated centre and scale).
        float64 centres/scales are used in float64, as the official code does with MPII's."""
        card = self.card
        fwd = affine_matrices(center, scale, card.input_size, inv=False, convention=card.convention)
        inv = affine_matrices(center, scale, card.heatmap_size, inv=True, convention=card.convention)
        areas = np.prod(np.asarray(scale, np.float32) * np.float32(200), axis=1).astype(np.float64)
        crops = self.crop_stage.warp(image, fwd, card.input_size)
        if card.color == "bgr":  # the crop stage warps the RGB image; channel order does not change the warp
            crops = crops.flip(-1) if isinstance(crops, torch.Tensor) else np.ascontiguousarray(crops[..., ::-1])
        if boxes is None:  # the crop's own square in image px, score 1
            side = np.asarray(scale, np.float64) * 200.0
            boxes = np.concatenate([np.asarray(center) - side / 2, side, np.ones((len(center), 1))], axis=1)
        return _Prepared(
            boxes[:, :4].copy(), boxes[:, 4].copy(), np.asarray(center), np.asarray(scale), inv, areas, crops
        )

    def keypoints(
        self, prepared: Sequence[_Prepared], flips: Sequence[bool], stage: dict[str, float] | None = None
    ) -> NDArray[np.float32]:
        """Crops of ``prepared`` images → ``(M, K, 3)`` image keypoints ``(x, y, score)`` (0-based px, raw heatmap
        maxima as scores), one flip flag per image; no rescoring, no NMS. Chunks of ``max_batch_crops``."""
        stage = stage if stage is not None else {}
        counts = [len(p.boxes) for p in prepared]
        total = sum(counts)
        self.crop_count += total
        kpts = np.zeros((total, self.card.num_joints, 3), dtype=np.float32)
        if not total:
            return kpts
        flip_of = np.repeat(np.asarray(flips, dtype=bool), counts)
        on_device = any(isinstance(p.crops, torch.Tensor) for p in prepared)
        crops_all: NDArray[np.uint8] | torch.Tensor = (
            torch.cat([torch.as_tensor(p.crops, device=self.device) for p in prepared])
            if on_device
            else np.concatenate([p.crops for p in prepared], axis=0)
        )
        inv = np.concatenate([p.inv for p in prepared], axis=0)
        coords_all = np.zeros((total, self.card.num_joints, 2), dtype=np.float32)
        for flip_value in (True, False):
            idx = np.nonzero(flip_of == flip_value)[0]
            for start in range(0, len(idx), self.config.max_batch_crops):
                sel = idx[start : start + self.config.max_batch_crops]
                tc = time.perf_counter()
                batch = (
                    crops_all[torch.from_numpy(sel).to(self.device)]
                    if isinstance(crops_all, torch.Tensor)
                    else torch.from_numpy(crops_all[sel]).to(self.device)
                )
                x = normalise(batch, self.card.mean, self.card.std)
                stage["crop"] = stage.get("crop", 0.0) + time.perf_counter() - tc
                hm = self.heatmaps(x, bool(flip_value), stage)
                td = time.perf_counter()
                coords, maxvals = self.codec.decode(hm)
                coords_all[sel] = coords.cpu().numpy()
                kpts[sel, :, 2] = maxvals.cpu().numpy()
                stage["keypoint_decode"] = stage.get("keypoint_decode", 0.0) + time.perf_counter() - td
        td = time.perf_counter()
        kpts[:, :, :2] = apply_affine(coords_all, inv).astype(np.float32)
        stage["keypoint_decode"] = stage.get("keypoint_decode", 0.0) + time.perf_counter() - td
        return kpts

    def estimate(
        self,
        images: Sequence[NDArray[np.uint8]],
        boxes: Sequence[NDArray[np.floating] | None],
        options: Sequence[PoseOptions] | PoseOptions | None = None,
        sources: Sequence[BoxesSource] | None = None,
        timings: dict[str, float] | None = None,
    ) -> list[PoseResult]:
        """Estimate poses for a batch of images with known person boxes (``None`` is refused: a top-down
        estimator needs boxes, which the pipeline gets from the client or the detector).

        Args:
            images: RGB uint8 ``(H, W, 3)`` arrays.
            boxes: per image ``(M_i, 4|5)`` boxes ``(x, y, w, h[, score])`` in image px (validated here).
            options: one :class:`PoseOptions` for all images or one per image.
            sources: where each image's boxes came from (reported in the result).
            timings: optional dict that receives the batch's stage durations (seconds).

        Returns:
            one :class:`PoseResult` per image, persons in OKS-NMS pick order (score order without NMS).
        """
        n_img = len(images)
        opts = _per_image(options, n_img)
        srcs: list[BoxesSource] = list(sources) if sources is not None else ["client"] * n_img
        stage: dict[str, float] = {}
        t0 = time.perf_counter()
        if any(b is None for b in boxes):
            raise InvalidInput(f"{self.card.name} is a top-down model: every image needs person boxes")
        checked = [
            validate_boxes(b, (im.shape[1], im.shape[0]))
            for im, b in zip(images, boxes, strict=True)
            if b is not None
        ]
        prepared = [self.prepare(im, b) for im, b in zip(images, checked, strict=True)]
        stage["crop"] = time.perf_counter() - t0
        counts = [len(p.boxes) for p in prepared]
        flips = [self.config.flip_default if o.flip is None else o.flip for o in opts]
        kpts = self.keypoints(prepared, flips, stage)
        results = []
        offset = 0
        for im, p, c, o, src in zip(images, prepared, counts, opts, srcs, strict=True):
            results.append(self._finish(im, p, kpts[offset : offset + c], o, src, stage))
            offset += c
        if timings is not None:
            timings.update(stage)
        return results

    def _finish(
        self,
        image: NDArray[np.uint8],
        p: _Prepared,
        kpts: NDArray[np.float32],
        opt: PoseOptions,
        source: BoxesSource,
        stage: dict[str, float],
    ) -> PoseResult:
        scores = rescore(p.box_scores, kpts[:, :, 2], self.config.rescore_threshold)
        if opt.oks_nms and len(scores):
            order = oks_nms(kpts, scores, p.areas, self.config.nms_threshold, self.card.oks_sigmas)
        else:
            order = [int(i) for i in np.argsort(-scores, kind="stable")]
        keep = [i for i in order if scores[i] >= opt.min_score]
        if opt.max_persons is not None:
            keep = keep[: opt.max_persons]
        persons = tuple(
            Person(
                bbox=(float(p.boxes[i, 0]), float(p.boxes[i, 1]), float(p.boxes[i, 2]), float(p.boxes[i, 3])),
                bbox_score=float(p.box_scores[i]),
                score=float(scores[i]),
                keypoints=kpts[i].copy(),
                box_index=int(i),
            )
            for i in keep
        )
        return PoseResult(
            image_size=(int(image.shape[1]), int(image.shape[0])),
            persons=persons,
            model=self.card.name,
            trained=self.trained,
            boxes_source=source,
            timings=dict(stage),
            joint_names=self.card.joint_names,
        )


def _per_image(options: Sequence[PoseOptions] | PoseOptions | None, n: int) -> list[PoseOptions]:
    if options is None:
        return [PoseOptions()] * n
    if isinstance(options, PoseOptions):
        return [options] * n
    opts = list(options)
    if len(opts) != n:
        raise ValueError(f"got {len(opts)} option sets for {n} images")
    return opts
