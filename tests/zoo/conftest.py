"""Model-zoo parity fixtures (``../shared/fixtures/zoo``, or ``POSESVC_ZOO_FIXTURES`` for another set of the same
format) and the fixture set's weights recipe: every network is rebuilt from its official key list and the seed."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

REPO = Path(__file__).resolve().parents[2]
ZOO = Path(os.environ.get("POSESVC_ZOO_FIXTURES", REPO.parent / "shared" / "fixtures" / "zoo"))


@pytest.fixture(scope="session")
def zoo_dir() -> Path:
    if not ZOO.is_dir():
        pytest.fail(f"zoo fixtures not found at {ZOO} (set POSESVC_ZOO_FIXTURES)")
    return ZOO


@pytest.fixture(scope="session")
def zoo_seed(zoo_dir: Path) -> int:
    return int(json.loads((zoo_dir / "summary.json").read_text())["seed"])


def recipe_state_dict(keys: list[list], seed: int, nd_scale: float = 1.0) -> dict[str, torch.Tensor]:
    """The fixture README's weights recipe: key ``i`` (official order) drawn from ``default_rng([seed, i])``."""
    sd: dict[str, torch.Tensor] = {}
    for i, entry in enumerate(keys):
        name, shape = entry[0], tuple(entry[1])
        rng = np.random.default_rng([seed, i])
        if name.endswith("num_batches_tracked"):
            sd[name] = torch.tensor(0, dtype=torch.int64)
            continue
        if name.endswith("running_mean"):
            v = rng.normal(0, 0.1, shape)
        elif name.endswith("running_var") or (len(shape) == 1 and name.endswith("weight")):
            v = rng.uniform(0.5, 1.5, shape)
        elif len(shape) == 1 and name.endswith("bias"):
            v = rng.normal(0, 0.05, shape)
        elif len(shape) >= 2:
            v = rng.normal(0, 1 / np.sqrt(np.prod(shape[1:])), shape) * nd_scale
        else:
            raise ValueError(f"the recipe has no rule for {name} {shape}")
        sd[name] = torch.from_numpy(np.asarray(v).astype(np.float32))
    return sd
