"""Fixtures for ``posesvc eval`` / ``posesvc bench`` tests: the CLI entry point, and a
real ``posesvc serve`` (small fixture model) shared by this package's tests."""

from __future__ import annotations

import pytest

from tests.transport.conftest import start_server, stop_server


@pytest.fixture
def cli():
    """``service.cli.main.main`` (``eval`` and ``bench`` are registered commands)."""
    from service.cli import main

    return main.main


@pytest.fixture(scope="package")
def samples(data_dir):
    return data_dir / "coco_samples"


@pytest.fixture(scope="package")
def eval_server(tmp_path_factory, small_card_path, small_weights):
    srv = start_server(tmp_path_factory.mktemp("eval-srv"), small_card_path, small_weights)
    yield srv
    stop_server(srv)
