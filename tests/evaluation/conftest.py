"""Fixtures for ``posesvc eval`` / ``posesvc bench`` tests: the CLI with the two commands registered, and a
real ``posesvc serve`` (small fixture model) shared by this package's tests."""

from __future__ import annotations

import pytest

from tests.transport.conftest import start_server, stop_server


@pytest.fixture
def cli(monkeypatch):
    """``service.cli.main.main`` with ``eval`` and ``bench`` in ``COMMANDS`` (main.py is not edited here)."""
    from service.cli import bench, main
    from service.cli import eval as eval_cmd

    monkeypatch.setattr(main, "COMMANDS", [*main.COMMANDS, eval_cmd, bench])
    return main.main


@pytest.fixture(scope="package")
def samples(data_dir):
    return data_dir / "coco_samples"


@pytest.fixture(scope="package")
def eval_server(tmp_path_factory, small_card_path, small_weights):
    srv = start_server(tmp_path_factory.mktemp("eval-srv"), small_card_path, small_weights)
    yield srv
    stop_server(srv)
