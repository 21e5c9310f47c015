"""The DARK decoding study on real COCO keypoints, heatmaps synthesised from ground truth (no network).

For every annotated person (``num_keypoints > 0``, ``iscrowd == 0``) the pipeline is the DarkPose test
pipeline with the network replaced by the training-target encoder:

1. GT box → DarkPose ``clean_bbox`` (clipped to the image, ``+1`` width convention) → ``center``/``scale``
   with the ``darkpose`` convention at input size ``4 × heatmap size`` (aspect 0.75 for all three sizes);
2. GT keypoints (``v > 0``) → heatmap space with the heatmap affine (DarkPose ``trans_heatmap``);
3. encode: HRNet quantised targets (centre rounded to the nearest heatmap pixel, windowed Gaussian) or
   DARK unbiased targets (sub-pixel centre, full-plane Gaussian), σ per resolution;
4. optionally degrade (i.i.d. Gaussian noise, or a second, displaced, lower peak);
5. decode with integer argmax, HRNet's ±0.25 quarter offset, or DARK (blur → log → Taylor);
6. inverse heatmap affine → image px → COCO results → pycocotools ``COCOeval('keypoints')`` on the same
   images, plus the mean/median pixel error over labelled joints.

Unlabelled joints (``v == 0``) and labelled joints whose 3σ box falls entirely outside the heatmap get weight
0: their plane is all zeros in every setting (degradations are applied to weighted planes only), so every
decoder returns heatmap ``(0, 0)`` with score 0, which maps back to the top-left corner of the enlarged box.
COCOeval ignores joints with GT ``v == 0``; the rescoring threshold (0.2) ignores score-0 joints; a labelled
but weight-0 joint is counted in the pixel error as it is (its count is reported as ``n_dropped``).

Shape vocabulary: N persons, K = 17 keypoints, heatmap size ``[W, H]``; heatmaps ``(N, K, H, W)`` float32;
heatmap coordinates ``(x, y)`` in heatmap px (pixel centres at integers); image coordinates in image px.

Modules: ``config`` (vocabulary, resolutions, degradations), ``data`` (COCO persons, geometry), ``synth``
(encode, degrade, decode), ``score`` (COCOeval, pixel errors), ``run`` (the driver), ``report`` (outputs).
"""

from .config import (
    DECODERS,
    ENCODINGS,
    Degradation,
    ResolutionSpec,
    StudyConfig,
    default_degradations,
)
from .data import Persons, heatmap_geometry, load_persons
from .report import markdown_table, plot_study, write_outputs
from .run import StudyResult, StudyRow, run_study
from .score import evaluate_keypoints, pixel_errors, results_for
from .synth import decode, decoder_keys, run_encoding

__all__ = [
    "DECODERS",
    "ENCODINGS",
    "Degradation",
    "Persons",
    "ResolutionSpec",
    "StudyConfig",
    "StudyResult",
    "StudyRow",
    "decode",
    "decoder_keys",
    "default_degradations",
    "evaluate_keypoints",
    "heatmap_geometry",
    "load_persons",
    "markdown_table",
    "pixel_errors",
    "plot_study",
    "results_for",
    "run_encoding",
    "run_study",
    "write_outputs",
]
