"""Plumbing of the DARK decoding study (``service.study.dark``) on a small real-COCO subset.

Most tests use the first 8 images of ``person_keypoints_val2017_subset538.json``; the full-set ordering at
64×48 (DARK ≥ quarter ≥ argmax in AP, unbiased targets, clean) is the last test: one setting on all 1354
persons, ~5 s, cheap enough to run by default.
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from service.errors import InvalidInput
from service.pipeline.geometry import apply_affine
from service.study.dark import (
    DECODERS,
    ENCODINGS,
    Degradation,
    ResolutionSpec,
    StudyConfig,
    decode,
    decoder_keys,
    default_degradations,
    evaluate_keypoints,
    heatmap_geometry,
    load_persons,
    pixel_errors,
    results_for,
    run_encoding,
    run_study,
    write_outputs,
)

ANN = "person_keypoints_val2017_subset538.json"
QUICK_IMAGES = 8
RESOLUTIONS = ("64x48", "32x24", "96x72")


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """As ``run_study`` does (``StudyConfig.threads``): a 2nd thread only slows the float64 blur here."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def ann(data_dir: Path) -> Path:
    return data_dir / ANN


@pytest.fixture(scope="module")
def quick(ann: Path):
    return load_persons(ann, max_images=QUICK_IMAGES)


@pytest.fixture(scope="module")
def quick_result(ann: Path):
    cfg = StudyConfig(
        ann_path=ann,
        resolutions=tuple(ResolutionSpec.parse(r) for r in RESOLUTIONS),
        degradations=default_degradations(),
        max_images=QUICK_IMAGES,
    )
    return run_study(cfg)


def _row(result, res="64x48", enc="unbiased", deg="none", dec="dark"):
    (row,) = [
        r
        for r in result.rows
        if r.resolution == res
        and r.encoding == enc
        and r.degradation == deg
        and r.decoder == dec
        and r.primary
    ]
    return row


def test_selection_matches_the_annotation_file(ann: Path):
    data = json.loads(ann.read_text())
    wanted = [a for a in data["annotations"] if a["num_keypoints"] > 0 and not a["iscrowd"]]
    _, persons = load_persons(ann)
    assert len(persons) == len(wanted) == 1354
    assert int(persons.visible.sum()) == sum(a["num_keypoints"] for a in wanted)
    assert len(persons.img_ids) == len({a["image_id"] for a in wanted})


def test_oracle_predictions_score_ap_one(quick):
    coco, persons = quick
    stats = evaluate_keypoints(
        coco, results_for(persons, persons.keypoints, np.ones((len(persons), 17))), persons.img_ids
    )
    assert stats["AP"] == pytest.approx(1.0)
    assert stats["AR"] == pytest.approx(1.0)


def test_oracle_through_the_heatmap_affines_scores_ap_one(quick):
    """GT → heatmap px → inverse heatmap affine → COCO writer: the geometry round trip is exact."""
    coco, persons = quick
    for label in RESOLUTIONS:
        geo = heatmap_geometry(persons, ResolutionSpec.parse(label))
        back = apply_affine(geo.keypoints_hm, geo.inverse)
        assert pixel_errors(back, persons.keypoints, persons.visible)[0] < 1e-3
        stats = evaluate_keypoints(
            coco, results_for(persons, back, np.ones((len(persons), 17))), persons.img_ids
        )
        assert stats["AP"] == pytest.approx(1.0)


@pytest.mark.parametrize("decoder", DECODERS)
def test_all_zero_planes_decode_to_the_origin_with_score_zero(decoder):
    """Why ``run_encoding`` may skip weight-0 planes: every decoder maps an all-zero plane to (0, 0),
    score 0."""
    coords, scores = decode(torch.zeros(2, 17, 64, 48), decoder, 11)
    assert torch.equal(coords, torch.zeros(2, 17, 2))
    assert torch.equal(scores, torch.zeros(2, 17))


def test_table_has_every_expected_row(quick_result):
    got = {(r.resolution, r.encoding, r.degradation, r.decoder, r.blur_kernel) for r in quick_result.rows}
    degs = [d.label for d in default_degradations()]
    assert degs == ["none", "noise0.02", "noise0.05", "noise0.1", "peak0.6"]
    want = set()
    for label in RESOLUTIONS:
        res = ResolutionSpec.parse(label)
        for enc in ENCODINGS:
            for deg in degs:
                want |= {(label, enc, deg, d, k) for d, k in decoder_keys(res, DECODERS)}
    assert got == want
    assert len(quick_result.rows) == len(want) == 3 * 2 * 5 * 3 + 2 * 5  # + the 32x24 k=11 ablation
    assert {("32x24", "unbiased", "none", "dark", k) for k in (3, 11)} <= got


def test_dark_decoding_of_unbiased_targets_is_near_exact(quick_result):
    dark = _row(quick_result)
    quarter = _row(quick_result, dec="quarter")
    argmax = _row(quick_result, dec="argmax")
    assert dark.n_dropped <= 1  # labelled joints > 3σ outside the heatmap: not encoded, decoded at the corner
    assert dark.err_img_mean_enc < 0.2  # image px, encoded joints
    assert dark.err_hm_median < 1e-3  # heatmap px
    assert argmax.err_hm_median == pytest.approx(0.4, abs=0.1)  # ~ quantisation error of an integer argmax
    assert dark.AP >= quarter.AP >= argmax.AP
    assert dark.err_img_mean < quarter.err_img_mean < argmax.err_img_mean


def test_decoders_agree_on_clean_quantised_targets(quick_result):
    """A quantised target is symmetric about an integer pixel: all decoders return that pixel."""
    rows = [_row(quick_result, enc="quantised", dec=d) for d in DECODERS]
    assert max(r.err_img_mean for r in rows) - min(r.err_img_mean for r in rows) < 1e-3
    assert len({r.AP for r in rows}) == 1


def test_runs_are_deterministic_and_encodings_share_the_noise(quick):
    _, persons = quick
    res = ResolutionSpec.parse("32x24")
    geo = heatmap_geometry(persons, res)
    deg = (Degradation("noise", 0.05), Degradation("second_peak", 0.6))
    keys = decoder_keys(res, DECODERS)
    a = run_encoding(persons, geo, res, "unbiased", deg, keys, seed=3, chunk_planes=32)
    b = run_encoding(persons, geo, res, "unbiased", deg, keys, seed=3, chunk_planes=96)  # other chunking
    c = run_encoding(persons, geo, res, "unbiased", deg, keys, seed=4, chunk_planes=32)
    q = run_encoding(persons, geo, res, "quantised", deg, keys, seed=3, chunk_planes=64)
    for key in a:
        np.testing.assert_array_equal(a[key].coords_hm, b[key].coords_hm)
    # same noise field for both encodings: the integer argmax under noise mostly agrees
    same = (a[("noise0.05", ("argmax", 0))].coords_hm == q[("noise0.05", ("argmax", 0))].coords_hm).all(-1)
    assert same[persons.visible].mean() > 0.5
    key = ("noise0.05", ("dark", 3))
    assert not np.array_equal(a[key].coords_hm, c[key].coords_hm)


def test_write_outputs(quick_result, tmp_path: Path):
    paths = write_outputs(quick_result, tmp_path / "out")
    with paths["csv"].open() as f:
        assert len(list(csv.DictReader(f))) == len(quick_result.rows)
    data = json.loads(paths["json"].read_text())
    assert len(data["rows"]) == len(quick_result.rows) and data["meta"]["max_images"] == QUICK_IMAGES
    assert paths["md"].read_text().count("\n") == len(quick_result.rows) + 2
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths["png"].stat().st_size < 200_000


def _cli(argv: list[str]) -> argparse.Namespace:
    from service.cli import study

    parser = argparse.ArgumentParser(prog="posesvc")
    study.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_cli_runs_a_small_study(ann: Path, tmp_path: Path, capsys):
    out = tmp_path / "cli"
    args = _cli(["study", "dark", "--ann", str(ann), "--out", str(out), "--resolutions", "32x24",
                 "--noise", "none", "--no-second-peak", "--max-images", "3"])  # fmt: skip
    assert args.func(args) == 0
    assert "| 32x24 | 1 | unbiased | none | dark k=3 |" in capsys.readouterr().out
    names = sorted(p.name for p in out.iterdir())
    assert names == ["dark_study.png", "results.csv", "results.json", "results.md"]


def test_cli_rejects_bad_arguments(ann: Path, tmp_path: Path):
    args = _cli(["study", "dark", "--ann", str(ann), "--resolutions", "64by48", "--out", str(tmp_path)])
    with pytest.raises(InvalidInput, match="64x48"):
        args.func(args)
    args = _cli(["study", "dark", "--ann", str(tmp_path / "missing.json")])
    with pytest.raises(InvalidInput, match="not found"):
        args.func(args)


def test_full_set_ordering_at_64x48(ann: Path):
    """DARK ≥ quarter ≥ argmax in AP (and the reverse in mean error) on all 1354 persons, unbiased, clean."""
    cfg = StudyConfig(ann, (ResolutionSpec.parse("64x48"),), (Degradation("none"),), encodings=("unbiased",))
    result = run_study(cfg)
    dark, quarter, argmax = (_row(result, dec=d) for d in ("dark", "quarter", "argmax"))
    assert dark.AP >= quarter.AP >= argmax.AP
    assert dark.err_img_mean_enc < quarter.err_img_mean_enc < argmax.err_img_mean_enc
    assert dark.err_img_mean_enc < 0.1
