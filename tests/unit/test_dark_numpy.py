"""The NumPy DARK kernel (the CPU path of ``dark_decode``) against brute force and the per-joint reference loop.

References here are independent of the kernel: direct per-plane NumPy slicing for the building blocks, and the
official-structure per-joint loop (NumPy + OpenCV ``GaussianBlur``) for the decoded coordinates.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from service.codecs import dark_numpy as dn
from service.codecs.functional import dark_decode, dark_decode_exact, dark_decode_torch
from service.loadgen.reference_loop import dark_decode_loop
from tests.unit.maps import mixed_maps


def _mixed_maps(seed: int, n: int = 24) -> np.ndarray:
    return mixed_maps(seed, n=n).numpy()


def test_heatmap_maximum_is_first_occurrence_with_nan_and_mask():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(40, 6, 7)).astype(np.float32)
    a[1] = 0.5  # all tied: first pixel
    a[2, 3, 4] = a[2, 5, 1] = 9.0  # tie: row-major first
    a[3, 2, 2] = np.nan  # NaN wins, like np.argmax
    a[4] = -1.0  # max not > 0: masked to (0, 0)
    px, py, mv = dn.heatmap_maximum_np(a.reshape(40, -1), 7)
    for i in range(40):
        j = int(np.argmax(a[i]))
        assert mv[i] == a[i].flat[j] or (np.isnan(mv[i]) and np.isnan(a[i].flat[j]))
        expect = (j % 7, j // 7) if a[i].flat[j] > 0 else (0, 0)
        assert (px[i], py[i]) == expect


@pytest.mark.parametrize(("h", "w", "half"), [(64, 48, 3), (9, 11, 3), (5, 5, 3), (32, 24, 1), (7, 40, 2)])
def test_max_outside_box_matches_brute_force(h, w, half):
    rng = np.random.default_rng(h * 100 + w)
    m = 300
    a = rng.normal(size=(m, h, w)).astype(np.float32)
    a[::17] = np.abs(a[::17]) * -1  # all-negative planes
    a[5, 0, 0] = np.nan
    px = rng.integers(0, w, m)
    py = rng.integers(0, h, m)
    px[:8], py[:8] = [0, w - 1, 0, w - 1, 1, w - 2, 0, w // 2], [0, 0, h - 1, h - 1, 1, h - 2, h // 2, 0]
    before = a.copy()
    got = dn.max_outside_box_np(a.reshape(m, -1), px, py, h, w, half)
    assert np.array_equal(a, before, equal_nan=True)  # not modified
    for i in range(m):
        mask = np.ones((h, w), bool)
        mask[max(py[i] - half, 0) : py[i] + half + 1, max(px[i] - half, 0) : px[i] + half + 1] = False
        ref = a[i][mask].max() if mask.any() else -np.inf
        assert got[i] == ref or (np.isnan(got[i]) and np.isnan(ref)), (i, px[i], py[i])


@pytest.mark.parametrize(("h", "w", "r"), [(64, 48, 7), (32, 24, 3), (12, 20, 7), (20, 12, 7)])
def test_patches_are_zero_padded_windows(h, w, r):
    rng = np.random.default_rng(r + h)
    m = 200
    a = rng.normal(size=(m, h, w)).astype(np.float32)
    sel = rng.permutation(m)[:150]
    px = rng.integers(0, w, sel.size)
    py = rng.integers(0, h, sel.size)
    px[:4], py[:4] = [0, w - 1, 0, w - 1], [0, h - 1, h - 1, 0]
    got = dn._patches(a, sel, px, py, r)
    padded = np.pad(a, ((0, 0), (r, r), (r, r)))
    for i, (p, x, y) in enumerate(zip(sel, px, py, strict=True)):
        np.testing.assert_array_equal(got[i], padded[p, y : y + 2 * r + 1, x : x + 2 * r + 1])


@pytest.mark.parametrize("ksize", [3, 5, 11])
def test_fast_kernel_equals_full_plane_decode_and_reference_loop(ksize, monkeypatch):
    """Certified planes (local 5×5 blur) and uncertified ones (full-plane fallback) both occur, and the result
    equals the literal full-plane decode and the official-structure per-joint loop."""
    hm = _mixed_maps(ksize)
    planes = hm.reshape(-1, *hm.shape[2:]).copy()
    fallback: list[int] = []
    full = dn.dark_decode_full_np

    def counting(p, k, mo=None):
        fallback.append(len(p))
        return full(p, k, mo)

    monkeypatch.setattr(dn, "dark_decode_full_np", counting)
    fast, s_fast = dn.dark_decode_np(planes, ksize)
    monkeypatch.undo()
    assert 0 < sum(fallback) < 0.6 * len(planes), fallback
    exact, s_exact = dn.dark_decode_full_np(planes, ksize)
    loop, s_loop = dark_decode_loop(hm, ksize)
    loop = loop.reshape(-1, 2)
    assert np.array_equal(s_fast, s_exact) and np.array_equal(s_fast, s_loop.ravel())
    # the full-plane decode blurs with OpenCV like the official code: bit-identical to the per-joint loop
    np.testing.assert_array_equal(exact, loop)
    same_full = (fast == exact).all(-1)
    same_loop = (fast == loop).all(-1)
    assert same_full.mean() > 0.995 and same_loop.mean() > 0.99, (same_full.mean(), same_loop.mean())
    # any difference is float64 summation order amplified by an ill-conditioned Taylor step
    argmax = np.stack(dn.heatmap_maximum_np(planes.reshape(len(planes), -1), planes.shape[2])[:2], -1)
    off = ~same_loop
    assert (np.abs(fast - loop).max(-1)[off] <= 1e-3).all() or (np.abs(loop - argmax).max(-1)[off] > 1).all()


def test_dispatch_cpu_numpy_and_torch_path_agree_with_their_references():
    hm = torch.from_numpy(_mixed_maps(7, n=8))
    before = hm.clone()
    c_np, s_np = dark_decode(hm, 11)
    c_t, s_t = dark_decode_torch(hm, 11)
    c_te, _ = dark_decode_exact(hm, 11)
    assert torch.equal(hm, before)
    assert c_np.shape == (8, 17, 2) and c_np.dtype == torch.float32 and s_np.dtype == torch.float32
    assert torch.equal(s_np, s_t)
    assert float((c_t == c_te).all(-1).float().mean()) > 0.99
    # numpy and torch differ only through float32 log ulps in ill-conditioned steps
    assert float((c_np - c_t).abs().amax(-1).median()) == 0.0


def test_read_only_and_non_float32_inputs():
    hm = _mixed_maps(3, n=2)
    ro = hm.astype(np.float64)
    ro.setflags(write=False)
    c1, s1 = dn.dark_decode_np(ro.reshape(-1, 64, 48), 11)
    c2, s2 = dn.dark_decode_np(hm.reshape(-1, 64, 48).copy(), 11)
    assert np.array_equal(c1, c2) and np.array_equal(s1, s2)
    ro32 = hm.reshape(-1, 64, 48).copy()
    ro32.setflags(write=False)
    c3, s3 = dn.dark_decode_np(ro32, 11)
    assert np.array_equal(c1, c3) and np.array_equal(s1, s3)


@pytest.mark.parametrize("shape", [(0, 64, 48), (3, 4, 4), (3, 5, 5), (2, 6, 5)])
def test_degenerate_shapes(shape):
    rng = np.random.default_rng(1)
    planes = rng.random(shape, dtype=np.float32)
    coords, scores = dn.dark_decode_np(planes, 3)
    ref, ref_s = dn.dark_decode_full_np(planes, 3)
    assert coords.shape == (shape[0], 2) and scores.shape == (shape[0],)
    np.testing.assert_array_equal(coords, ref)
    np.testing.assert_array_equal(scores, ref_s)


def test_invalid_kernel_is_rejected():
    with pytest.raises(ValueError, match="odd"):
        dn.dark_decode_np(np.ones((1, 64, 48), np.float32), 4)


def test_clean_and_sparse_maps_are_certified_without_fallback(monkeypatch):
    """Zero backgrounds (far = 0) and clean Gaussians take the local path only (the fallback is for noise)."""
    rng = np.random.default_rng(5)
    m = 64
    planes = np.zeros((m, 64, 48), np.float32)
    px, py = rng.integers(6, 42, m), rng.integers(6, 58, m)
    yy, xx = np.mgrid[-2:3, -2:3]
    for i in range(m):  # a 5×5 bump on an exactly zero background
        planes[i, py[i] - 2 : py[i] + 3, px[i] - 2 : px[i] + 3] = np.exp(-(xx**2 + yy**2) / 3.0)
    ys, xs = np.mgrid[0:64, 0:48]
    cx, cy = rng.uniform(3, 45, (m, 1, 1)), rng.uniform(3, 61, (m, 1, 1))
    gauss = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / 8.0).astype(np.float32)
    calls: list[int] = []
    monkeypatch.setattr(dn, "dark_decode_full_np", lambda p, k, mo=None: calls.append(len(p)) or (None, None))
    dn.dark_decode_np(planes, 11)
    dn.dark_decode_np(gauss, 11)
    assert calls == []
