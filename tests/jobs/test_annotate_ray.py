"""``posesvc annotate --ray``: a local Ray (loopback only) with two pipeline actors writes exactly the embedded
run's output, in the same order, even when an actor dies in the middle (its batch is retried)."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.cli.main import main

pytest.importorskip("ray")


def test_ray_output_is_the_embedded_output_despite_a_dead_actor(
    data_dir: Path, small_card_path: Path, small_weights: Path, tmp_path: Path, monkeypatch
) -> None:
    samples = data_dir / "coco_samples"
    base = ["annotate", "--ann", str(samples / "test_coco.json"), "--images", str(samples), "--gt-boxes",
            "--card", str(small_card_path), "--weights", str(small_weights), "--no-progress", "--batch-images", "1"]  # fmt: skip
    monkeypatch.setenv("POSESVC_WEIGHTS_DIR", str(tmp_path / "weights"))
    assert main([*base, "--out", str(tmp_path / "embedded")]) == 0
    marker = tmp_path / "killed"
    monkeypatch.setenv("POSESVC_TEST_KILL_ACTOR", f"coco:196141|{marker}")
    assert main([*base, "--out", str(tmp_path / "ray"), "--ray", "--actors", "2"]) == 0
    assert marker.exists()  # an actor did die on that item, and its batch was retried
    embedded = (tmp_path / "embedded" / "annotations.jsonl").read_bytes()
    assert embedded and (tmp_path / "ray" / "annotations.jsonl").read_bytes() == embedded
    assert (tmp_path / "ray" / "results.json").read_bytes() == (tmp_path / "embedded" / "results.json").read_bytes()
