"""Shared test fixtures. Reference data is read in place from ``../shared`` (never copied):

* ``POSESVC_PARITY_FIXTURES``: official DarkPose fixture set (default ``../shared/fixtures/darkpose``);
* ``POSESVC_SHARED_DATA``: real COCO images/annotations (default ``../shared/data``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

# No test downloads anything: servers and commands started by the suite (they inherit this environment) never
# fetch missing weights on start; tests of the first-start download turn it back on against a loopback server.
os.environ["POSESVC_DOWNLOAD"] = "false"

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("POSESVC_PARITY_FIXTURES", REPO.parent / "shared" / "fixtures" / "darkpose"))
DATA = Path(os.environ.get("POSESVC_SHARED_DATA", REPO.parent / "shared" / "data"))


def small_card_toml(fixtures: Path = FIXTURES, name: str = "darkpose_small_fixture") -> str:
    """A model card (TOML text) describing the fixture set's small official-format model, derived from its
    merged official config (``small_model_config.json``), so the suite works for any fixture set."""
    cfg = json.loads((fixtures / "small_model_config.json").read_text())
    m, extra, test = cfg["MODEL"], cfg["MODEL"]["EXTRA"], cfg["TEST"]
    channels = [extra[f"STAGE{i}"]["NUM_CHANNELS"] for i in (2, 3, 4)]
    modules = [extra[f"STAGE{i}"]["NUM_MODULES"] for i in (2, 3, 4)]
    blocks = [extra[f"STAGE{i}"]["NUM_BLOCKS"][0] for i in (2, 3, 4)]
    return f"""
name = "{name}"
description = "small official-format HRNet from the parity fixtures (random weights)"
[architecture]
name = "hrnet"
stage_channels = {json.dumps(channels)}
stage_modules = {json.dumps(modules)}
stage_blocks = {json.dumps(blocks)}
num_joints = {m["NUM_JOINTS"]}
final_conv_kernel = {extra["FINAL_CONV_KERNEL"]}
[input]
size = {json.dumps(m["IMAGE_SIZE"])}
[heatmap]
size = {json.dumps(m["HEATMAP_SIZE"])}
[geometry]
convention = "darkpose"
flip_shift = false
[codec]
name = "dark"
blur_kernel = {test["BLUR_KERNEL"]}
sigma = {m["SIGMA"]}
[checkpoint]
format = "darkpose"
filename = "small_model_state_dict.pt"
"""


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    if not FIXTURES.is_dir():
        pytest.fail(f"parity fixtures not found at {FIXTURES} (set POSESVC_PARITY_FIXTURES)")
    return FIXTURES


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA.is_dir():
        pytest.fail(f"shared data not found at {DATA} (set POSESVC_SHARED_DATA)")
    return DATA


@pytest.fixture(scope="session")
def small_card_path(tmp_path_factory: pytest.TempPathFactory, fixtures_dir: Path) -> Path:
    p = tmp_path_factory.mktemp("cards") / "darkpose_small_fixture.toml"
    p.write_text(small_card_toml(fixtures_dir))
    return p


@pytest.fixture(scope="session")
def small_card(small_card_path: Path):
    from service.pipeline.card import load_card

    return load_card(small_card_path)


@pytest.fixture(scope="session")
def small_weights(fixtures_dir: Path) -> Path:
    return fixtures_dir / "small_model_state_dict.pt"


@pytest.fixture(scope="session")
def small_estimator(small_card, small_weights):
    from service.pipeline.estimator import EstimatorConfig, PoseEstimator

    return PoseEstimator.from_card(small_card, small_weights, config=EstimatorConfig(max_batch_crops=64))


@pytest.fixture(scope="session")
def crop_cases(fixtures_dir: Path):
    return np.load(fixtures_dir / "crop_cases.npz")


@pytest.fixture
def small_net_fresh(small_card, small_weights):
    """A new copy of the small official model (tests may change its weights)."""
    from service.nets import build_net, load_checkpoint_file

    net = build_net(small_card.architecture, small_card.arch_params).eval()
    load_checkpoint_file(net, small_weights)
    return net
