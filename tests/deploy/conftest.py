"""Shared helpers for the deployment-artefact tests (tests/deploy).

External tools (docker-compose, hadolint, kubernetes-validate) are installed in CI by
``.ci/install-deploy-tools.sh``. Locally a missing tool skips its test; in CI (``CI=true``) a
missing tool fails it, so CI cannot silently stop validating.
"""

from __future__ import annotations

import importlib
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def find_tool(name: str) -> str:
    """Path of an executable: the running venv's bin/ first (pip-installed tools), then PATH.

    Skips the calling test when missing, or fails it when ``CI=true``.
    """
    venv_bin = Path(sys.executable).parent / name
    if venv_bin.is_file() and os.access(venv_bin, os.X_OK):
        return str(venv_bin)
    found = shutil.which(name)
    if found:
        return found
    message = f"`{name}` not found (install with .ci/install-deploy-tools.sh)"
    if _in_ci():
        pytest.fail(message + "; required when CI=true", pytrace=False)
    pytest.skip(message)


def require_module(name: str) -> object:
    """Import a module that a deployment tool provides; skip/fail like :func:`find_tool`."""
    try:
        return importlib.import_module(name)
    except ImportError:
        message = f"Python module `{name}` not installed (install with .ci/install-deploy-tools.sh)"
        if _in_ci():
            pytest.fail(message + "; required when CI=true", pytrace=False)
        pytest.skip(message)


@pytest.fixture
def tool() -> Callable[[str], str]:
    return find_tool


@pytest.fixture
def module() -> Callable[[str], object]:
    return require_module


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def exported_sample_names() -> frozenset[str]:
    """Every sample name a fresh ``Metrics()`` exports, read back from its registry.

    One child of every family is created (and observed/incremented/set) so that labelled families
    produce samples; the names come from ``registry.collect()``, not from the metric specs.
    """
    from prometheus_client import Counter, Gauge, Histogram

    from service.observability.metrics import Metrics

    m = Metrics()
    for metric in vars(m).values():
        if not isinstance(metric, Counter | Gauge | Histogram):
            continue
        labelnames = metric._labelnames
        child = metric.labels(*["x"] * len(labelnames)) if labelnames else metric
        if isinstance(child, Counter):
            child.inc()
        elif isinstance(child, Gauge):
            child.set(1)
        else:
            child.observe(1)
    return frozenset(s.name for family in m.registry.collect() for s in family.samples)
