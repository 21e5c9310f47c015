"""Parity fixtures shared by this package: the small official model through every CPU backend.

Tests that take ``backend_estimator`` run once per backend (``torch``, ``onnxruntime``, ``openvino``), or only
for the backend named by ``POSESVC_MODEL__BACKEND`` when that is set (e.g. to run the suite on one backend).
"""

from __future__ import annotations

import os

import pytest

BACKENDS = [os.environ["POSESVC_MODEL__BACKEND"]] if os.environ.get("POSESVC_MODEL__BACKEND") else [
    "torch", "onnxruntime", "openvino"]  # fmt: skip


@pytest.fixture(scope="session", params=BACKENDS)
def backend_estimator(request, small_card, small_weights, tmp_path_factory):
    from service.pipeline.estimator import EstimatorConfig, PoseEstimator

    est = PoseEstimator.from_card(
        small_card, small_weights, config=EstimatorConfig(max_batch_crops=64), backend=request.param,
        export_dir=tmp_path_factory.mktemp("exports"),
    )  # fmt: skip
    assert est.backend.name == request.param or request.param == "auto"
    return est
