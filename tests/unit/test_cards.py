"""Model cards: every shipped card parses, builds, and carries what the pipeline needs."""

from __future__ import annotations

import pytest

from service.errors import CardError
from service.pipeline.card import list_cards, load_card, parse_card
from service.zoo.keypoints import COCO17, CROWDPOSE14, MPII16


def test_shipped_cards():
    names = list_cards()
    for required in ("hrnet_w32_256x192_darkpose", "hrnet_w48_384x288_darkpose",
                     "hrnet_w32_256x192_mmpose_dark", "hrnet_w48_384x288_mmpose_dark"):  # fmt: skip
        assert required in names
    for name in names:
        c = load_card(name)
        if c.kind == "bottomup":  # DEKR: no crops; the official test settings and the OneDrive checkpoint
            assert c.architecture == "dekr" and c.bottomup["input_size"] == c.input_size[0]
            assert c.keypoints is (CROWDPOSE14 if "crowdpose" in name else COCO17) and c.checkpoint.how_to_get
            assert c.published_metrics, name
            continue
        mpii = "_mpii_" in name
        assert c.keypoints is (MPII16 if mpii else COCO17)
        assert c.input_size[0] == 4 * c.heatmap_size[0] and c.input_size[1] == 4 * c.heatmap_size[1]
        if mpii:
            assert c.published_ap is None and c.published_metrics["mpii_val_pckh"] > 90
        else:
            assert c.published_ap is not None and c.published_metrics["coco_val2017_ap"] == c.published_ap
        assert c.checkpoint.url or c.checkpoint.how_to_get
        if c.checkpoint.format == "mmpose":
            assert c.convention == "hrnet" and c.flip_shift
            assert c.checkpoint.sha256 and c.checkpoint.sha256 in c.checkpoint.url
        else:
            assert c.convention == "darkpose" and not c.flip_shift
        if mpii:  # r_ankle <-> l_ankle, pelvis stays
            assert c.flip_permutation[0] == 5 and c.flip_permutation[6] == 6
        else:
            assert c.flip_permutation[1] == 2 and c.flip_permutation[0] == 0


def test_card_from_path(small_card_path):
    c = load_card(small_card_path)
    assert c.name == "darkpose_small_fixture"


def test_bad_cards(tmp_path):
    with pytest.raises(CardError, match="not found"):
        load_card("no_such_card")
    base = {"architecture": {"name": "hrnet"}, "input": {"size": [192, 256]}, "heatmap": {"size": [48, 64]},
            "geometry": {"convention": "darkpose"}, "codec": {"name": "dark"}}  # fmt: skip
    parse_card(base)
    with pytest.raises(CardError, match="convention"):
        parse_card({**base, "geometry": {"convention": "udp"}})
    with pytest.raises(CardError, match=r"codec\.name"):
        parse_card({**base, "codec": {"name": "simcc"}})
    with pytest.raises(CardError, match="multiples of 32"):
        parse_card({**base, "input": {"size": [190, 256]}})
    with pytest.raises(CardError, match="missing required key"):
        parse_card({k: v for k, v in base.items() if k != "heatmap"})
    bad = tmp_path / "bad.toml"
    bad.write_text("this is = = not toml")
    with pytest.raises(CardError, match="cannot read"):
        load_card(bad)
