"""Strict checkpoint loading: prefixes, MMPose layout, safetensors, refusals with key lists."""

from __future__ import annotations

import pickle

import pytest
import torch

from service.errors import CheckpointError
from service.nets import build_net, list_nets, load_checkpoint_file, load_into
from service.nets.checkpoint import read_state_dict


@pytest.fixture(scope="module")
def sd(small_weights):
    return torch.load(small_weights, weights_only=True)


@pytest.fixture
def net(small_card):
    return build_net(small_card.architecture, small_card.arch_params).eval()


def _same(a, b):
    sa, sb = a.state_dict(), b.state_dict()
    return all(torch.equal(sa[k], sb[k]) for k in sa)


def test_registry():
    assert "hrnet" in list_nets()
    with pytest.raises(ValueError, match="unknown architecture"):
        build_net("nope", {})


def test_module_prefix_and_missing_num_batches_tracked(sd, net, small_card):
    wrapped = {
        "state_dict": {"module." + k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    }
    load_into(net, wrapped["state_dict"])
    ref = build_net(small_card.architecture, small_card.arch_params)
    load_into(ref, sd)
    got, want = net.state_dict(), ref.state_dict()
    assert all(torch.equal(got[k], want[k]) for k in sd if not k.endswith("num_batches_tracked"))


def test_missing_and_unexpected_keys_are_listed(sd, net):
    broken = dict(sd)
    del broken["final_layer.weight"]
    broken["extra.thing"] = torch.zeros(1)
    with pytest.raises(CheckpointError) as exc:
        load_into(net, broken)
    msg = str(exc.value)
    assert "final_layer.weight" in msg and "extra.thing" in msg and "missing" in msg and "unexpected" in msg


def test_shape_mismatch(sd, net):
    broken = dict(sd)
    broken["final_layer.bias"] = torch.zeros(3)
    with pytest.raises(CheckpointError, match="shape mismatch"):
        load_into(net, broken)


def test_mmpose_layout(sd, net, small_card, tmp_path):
    mm = {("keypoint_head." if k.startswith("final_layer.") else "backbone.") + k: v for k, v in sd.items()}
    path = tmp_path / "mmpose.pth"
    torch.save({"state_dict": mm, "meta": {"epoch": 210, "mmpose_version": "0.x"}}, path)
    load_checkpoint_file(net, path, "mmpose")
    ref = build_net(small_card.architecture, small_card.arch_params)
    load_into(ref, sd)
    assert _same(net, ref)
    # MMPose 1.x names the head "head"; auto-detection also works
    mm1 = {("head." if k.startswith("final_layer.") else "backbone.") + k: v for k, v in sd.items()}
    load_into(net, mm1, "auto")
    assert _same(net, ref)


def test_safetensors(sd, net, tmp_path):
    from safetensors.torch import save_file

    p = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in sd.items()}, str(p))
    load_checkpoint_file(net, p)
    assert torch.equal(net.state_dict()["conv1.weight"], sd["conv1.weight"])


class _Evil:
    def __reduce__(self):
        return (print, ("code ran",))


def test_refuses_pickled_code(tmp_path):
    p = tmp_path / "evil.pth"
    with open(p, "wb") as f:
        pickle.dump({"state_dict": _Evil()}, f)
    with pytest.raises(CheckpointError, match="weights-only"):
        read_state_dict(p)
