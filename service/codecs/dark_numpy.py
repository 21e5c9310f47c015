"""DARK decode for CPU heatmaps in NumPy: the maths of :mod:`service.codecs.functional`, fused for one core.

On CPU, torch pays a fixed cost per operator (several µs) and its small-matrix GEMMs and gathers are slow,
while the decode is ~40 operations over ~1000 joints. NumPy runs the same vectorised maths (no loop over
persons or joints) several times faster; :func:`service.codecs.functional.dark_decode` dispatches here for
CPU tensors and keeps the torch implementation for other devices.

Shapes: ``M`` planes (persons × joints flattened), heatmap ``(H, W)``; coordinates are ``(x, y)`` heatmap
pixels. The precision follows the official code under numpy 1.x (see :mod:`service.codecs.functional`):
argmax and scores on the raw map, the blur in float64, float32 max-rescale and log (NumPy's float32 ``log``,
as in the official code), a Taylor step with float32 first differences and float64 second differences,
determinant test and 2×2 inverse.

Method (exact, not an approximation). The two passes over the whole array are the argmax and one
``np.maximum.reduceat`` for ``far`` (below); everything else touches a few hundred values per joint. The Taylor step only reads the blurred map on the 5×5 grid ``G``
around the integer maximum, plus the plane's blurred maximum (the rescale). ``G`` is blurred exactly from a
raw ``(5 + 2b)²`` patch. The plane's blurred maximum equals ``max(G)`` whenever every position outside
``G`` provably blurs to at most ``max(G)``; a position ``x`` outside ``G`` (Chebyshev distance ≥ 3) has

    blurred(x) <= (blur of the raw 7×7 core C around the peak)(x) + far · (1 − mass_C(x)),

where ``far = max(0, max raw outside C)`` and ``mass_C(x) <= 1`` is the kernel mass ``x``'s window puts on ``C``
(zero padding only removes mass). The bound is evaluated exactly at distances 3–5; farther out
``blurred(x) <= far + (peak − far) · max mass_C``. Planes whose ``max(G)`` is not certified (noise, several
peaks) take :func:`dark_decode_full_np`, the literal full-plane decode (one OpenCV blur over the stacked planes),
so the result is the same either way.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, NamedTuple

import cv2
import numpy as np
from numpy.typing import NDArray

F32 = NDArray[np.float32]
F64 = NDArray[np.float64]
I64 = NDArray[np.intp]

_CORE = 3  # half-size of the raw core box C around the peak
_GRID = 2  # half-size of the blurred grid G read by the Taylor step (5×5)
_RING = 5  # the bound is evaluated exactly up to this Chebyshev distance; beyond it, a scalar bound
_MARGIN = 1e-5  # relative slack on the float32 bound (its own round-off is below 1e-6)


class _Tables(NamedTuple):
    taps: F64  # (ksize,) OpenCV Gaussian taps
    grid_taps: F64  # (side, 5): weight of patch column c for grid column j
    core_taps: F32  # (2·CORE+1, ring): weight of core column c for ring column j
    ring_free: F32  # (ring²,) 1 − mass_C on the ring, −inf on the 5×5 grid (excluded)
    mass_beyond: float  # largest mass_C of any position beyond the exact ring


@functools.lru_cache(maxsize=16)
def _tables(ksize: int) -> _Tables:
    if ksize < 1 or ksize % 2 == 0:
        raise ValueError(f"blur kernel must be a positive odd integer, got {ksize}")
    taps = cv2.getGaussianKernel(ksize, 0, ktype=cv2.CV_64F).ravel().astype(np.float64)
    b = (ksize - 1) // 2

    def band(src: NDArray[np.intp], dst: NDArray[np.intp]) -> F64:
        """``(len(src), len(dst))`` weights: tap for ``dst − src`` (offsets from the same centre)."""
        d = dst[None, :] - src[:, None] + b
        out: F64 = np.where((d >= 0) & (d < ksize), taps[np.clip(d, 0, ksize - 1)], 0.0)
        return out

    r = _GRID + b
    grid_taps = band(np.arange(-r, r + 1), np.arange(-_GRID, _GRID + 1))
    core = np.arange(-_CORE, _CORE + 1)
    ring = min(_RING, _CORE + b)
    ring_pos = np.arange(-ring, ring + 1)
    core_taps = band(core, ring_pos)
    col_mass = core_taps.sum(0)
    offs = np.abs(ring_pos)
    inner = (offs[:, None] <= _GRID) & (offs[None, :] <= _GRID)
    ring_free = np.where(inner, -np.inf, 1.0 - np.outer(col_mass, col_mass)).ravel()
    reach = np.arange(-(_CORE + b) - 1, _CORE + b + 2)
    col = band(core, reach).sum(0)
    beyond = (np.abs(reach)[:, None] > ring) | (np.abs(reach)[None, :] > ring)
    mass_beyond = float(np.outer(col, col)[beyond].max())
    return _Tables(taps, grid_taps, core_taps.astype(np.float32), ring_free.astype(np.float32), mass_beyond)


def heatmap_maximum_np(flat: F32, w: int) -> tuple[I64, I64, F32]:
    """First maximum per plane (``np.argmax`` semantics, NaN wins) and its value.

    Args:
        flat: ``(M, H·W)`` float32.
        w: heatmap width.

    Returns:
        ``px``, ``py`` ``(M,)`` integer maxima, set to 0 where the maximum is not ``> 0``, and ``maxvals``
        ``(M,)`` float32.
    """
    idx = flat.argmax(axis=1)
    maxvals: F32 = flat.reshape(-1)[idx + np.arange(flat.shape[0]) * flat.shape[1]]
    py, px = np.divmod(idx, w)
    pos = maxvals > 0
    return np.where(pos, px, 0), np.where(pos, py, 0), maxvals


def max_outside_box_np(flat: F32, px: I64, py: I64, h: int, w: int, half: int) -> F32:
    """``(M,)`` maximum of each plane outside the ``(2·half+1)²`` box around ``(px, py)`` (−inf if none).

    One ``np.maximum.reduceat`` pass over the array: per plane the breakpoints are the plane start and the
    start/end of each box row, so the segments alternate between "outside the box" and "box row". Box rows
    off the plane repeat the nearest row on it; segments that are empty (or that those repeats make
    non-increasing) are discarded. The input is not modified.

    Args:
        flat: ``(M, H·W)`` float32, C-contiguous.
        px, py: ``(M,)`` box centres.
        h, w: heatmap size.
        half: box half-size.
    """
    m = flat.shape[0]
    hw = h * w
    if m == 0:
        return np.zeros(0, np.float32)
    base = (np.arange(m, dtype=np.intp) * hw)[:, None]
    rows = np.minimum(np.maximum(py[:, None] + np.arange(-half, half + 1), 0), h - 1)
    x0 = np.maximum(px - half, 0)[:, None]
    x1 = np.minimum(px + half + 1, w)[:, None]
    nb = 2 * (2 * half + 1) + 1
    bp = np.empty((m, nb + 1), np.intp)
    bp[:, 0] = base[:, 0]
    bp[:, 1:nb:2] = base + rows * w + x0
    bp[:, 2:nb:2] = base + rows * w + x1
    bp[:, nb] = base[:, 0] + hw  # end of the plane (start of the next one)
    seg = np.maximum.reduceat(flat.reshape(-1), np.minimum(bp[:, :nb], m * hw - 1).ravel()).reshape(m, nb)
    valid = bp[:, 0:nb:2] < bp[:, 1 : nb + 1 : 2]
    out: F32 = np.where(valid, seg[:, 0::2], np.float32(-np.inf)).max(axis=1)
    return out


def _patches(planes: F32, sel: I64, px: I64, py: I64, r: int) -> F32:
    """``(S, 2r+1, 2r+1)`` raw patches centred on ``(px, py)`` of planes ``sel``, zeros off the plane.

    Every patch is first copied from a window clamped into the plane (one strided fancy-index copy); patches
    that cross the border are then shifted into place inside a zero-padded copy of their window.
    """
    _, h, w = planes.shape
    side = 2 * r + 1
    if h < side or w < side:
        off = np.arange(-r, r + 1)
        ys, xs = py[:, None] + off, px[:, None] + off
        keep = ((ys >= 0) & (ys < h))[:, :, None] & ((xs >= 0) & (xs < w))[:, None, :]
        idx = (sel * (h * w))[:, None, None] + np.minimum(np.maximum(ys, 0), h - 1)[:, :, None] * w
        idx = idx + np.minimum(np.maximum(xs, 0), w - 1)[:, None, :]
        out: F32 = np.where(keep, planes.reshape(-1).take(idx), np.float32(0.0))
        return out
    y0 = np.minimum(np.maximum(py - r, 0), h - side)
    x0 = np.minimum(np.maximum(px - r, 0), w - side)
    view = _strided(
        planes,
        (planes.shape[0], h - side + 1, w - side + 1, side, side),
        (*planes.strides, planes.strides[1], planes.strides[2]),
    )
    out = view[sel, y0, x0]
    dy, dx = py - r - y0, px - r - x0  # shift of the wanted patch against the clamped window
    bb = np.flatnonzero((dy != 0) | (dx != 0))
    if bb.size:
        padded = np.zeros((bb.size, side + 2 * r, side + 2 * r), np.float32)  # |dy|, |dx| <= r
        padded[:, r : r + side, r : r + side] = out[bb]
        pv = _strided(
            padded,
            (bb.size, 2 * r + 1, 2 * r + 1, side, side),
            (*padded.strides, padded.strides[1], padded.strides[2]),
        )
        out[bb] = pv[np.arange(bb.size), r + dy[bb], r + dx[bb]]
    return out


def _separable(x: NDArray[np.floating], taps: NDArray[np.floating]) -> NDArray[np.floating]:
    """``(S, A, A)`` → ``(S, B, B)`` indexed ``[x, y]``: ``out[s, j, i] = Σ_ac taps[a, i] x[s, a, c] taps[c, j]``,
    rows pass first (as OpenCV's separable filter), as two large 2-D GEMMs in the input's dtype."""
    s, a, _ = x.shape
    nb = taps.shape[1]
    along_x = (x.reshape(s * a, a) @ taps).reshape(s, a, nb)
    t = np.ascontiguousarray(along_x.transpose(0, 2, 1)).reshape(s * nb, a)
    out: NDArray[np.floating] = (t @ taps).reshape(s, nb, nb)
    return out


def lu2x2_inverse(a: Any, b: Any, d: Any, where: Callable[[Any, Any, Any], Any]) -> tuple[Any, Any, Any, Any]:
    """Inverse entries ``(i00, i01, i10, i11)`` of the symmetric ``[[a, b], [b, d]]`` by LU with partial
    pivoting (LAPACK ``gesv`` order, like ``np.linalg.inv``), elementwise over NumPy arrays or torch tensors
    (``where`` is ``np.where`` or ``torch.where``); singular systems give inf/NaN (callers mask them)."""
    swap = abs(b) > abs(a)
    # No pivot: rows [[a, b], [b, d]].
    l_n = b / a
    u_n = d - l_n * b
    i10_n = -l_n / u_n
    i11_n = 1.0 / u_n
    i00_n = (1.0 - b * i10_n) / a
    i01_n = (0.0 - b * i11_n) / a
    # Pivot: rows [[b, d], [a, b]], right-hand sides swapped.
    l_p = a / b
    u_p = b - l_p * d
    i10_p = 1.0 / u_p
    i11_p = -l_p / u_p
    i00_p = (0.0 - d * i10_p) / b
    i01_p = (1.0 - d * i11_p) / b
    return (
        where(swap, i00_p, i00_n),
        where(swap, i01_p, i01_n),
        where(swap, i10_p, i10_n),
        where(swap, i11_p, i11_n),
    )


# (dy, dx) offsets of the 13-point stencil read by the Taylor step, and their flat index in a 5×5 grid [x, y].
STENCIL = (
    (0, 0), (0, 1), (0, -1), (1, 0), (-1, 0), (0, 2), (0, -2), (2, 0), (-2, 0),
    (1, 1), (-1, 1), (1, -1), (-1, -1),
)  # fmt: skip
_STENCIL_XY = np.array([(_GRID + dx) * (2 * _GRID + 1) + (_GRID + dy) for dy, dx in STENCIL])


def taylor_offsets_np(st: F32) -> tuple[F64, F64, F64]:
    """Taylor step from the log-heatmap stencil values around each maximum.

    Args:
        st: ``(13, S)`` float32 ``log(max(blurred, 1e-10))`` at the offsets of ``STENCIL`` (rows).

    Returns:
        ``(ox, oy, det)`` float64 ``(S,)``: the official ``-inv(Hessian) @ gradient`` offsets (NaN/inf where
        singular) and the Hessian determinant, with the official mixed precision (see module docstring).
    """
    c, xp1, xm1, yp1, ym1, xp2, xm2, yp2, ym2, pp, mp, pm, mm = st
    f64 = np.float64
    c64 = c.astype(f64)
    dx = 0.5 * (xp1 - xm1).astype(f64)
    dy = 0.5 * (yp1 - ym1).astype(f64)
    dxx = 0.25 * ((xp2.astype(f64) - 2 * c64) + xm2.astype(f64))
    dyy = 0.25 * ((yp2.astype(f64) - 2 * c64) + ym2.astype(f64))
    dxy = 0.25 * (((pp - mp) - pm) + mm).astype(f64)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        det = dxx * dyy - dxy**2
        i00, i01, i10, i11 = lu2x2_inverse(dxx, dxy, dyy, np.where)
        ox = -i00 * dx + -i01 * dy
        oy = -i10 * dx + -i11 * dy
    return ox, oy, det


def _log_floor(x: F32) -> F32:
    out: F32 = np.log(np.maximum(x, np.float32(1e-10)))
    return out


def _refine(
    coords: F32, sel: I64, px: I64, py: I64, st: F32, max_offset: float | None, ok: NDArray[np.bool_] | None
) -> None:
    """Write Taylor-refined ``(x, y)`` into ``coords[sel]`` where the step applies (in place); ``st`` is the
    ``(13, S)`` log stencil of :func:`taylor_offsets_np`."""
    ox, oy, det = taylor_offsets_np(st)
    use = det != 0
    if ok is not None:
        use &= ok
    if max_offset is not None:
        with np.errstate(invalid="ignore"):
            use &= (np.abs(ox) <= max_offset) & (np.abs(oy) <= max_offset)
    u = sel[use]
    coords[u, 0] = (px[use] + ox[use]).astype(np.float32)
    coords[u, 1] = (py[use] + oy[use]).astype(np.float32)


def _as_coords(px: I64, py: I64) -> F32:
    coords = np.empty((px.size, 2), np.float32)
    coords[:, 0] = px
    coords[:, 1] = py
    return coords


def _strided(a: NDArray[np.float32], shape: tuple[int, ...], strides: tuple[int, ...]) -> NDArray[np.float32]:
    """A read-only strided view of ``a`` (``np.lib.stride_tricks.as_strided`` without its Python overhead)."""
    view: NDArray[np.float32] = np.ndarray(shape, a.dtype, buffer=a, strides=strides)
    view.flags.writeable = False
    return view


def _inside(px: I64, py: I64, maxvals: F32, h: int, w: int) -> NDArray[np.bool_]:
    """Joints the official Taylor step applies to: positive maximum, ``2 <= x <= W-3``, ``2 <= y <= H-3``."""
    out: NDArray[np.bool_] = (maxvals > 0) & (px > 1) & (px < w - 2) & (py > 1) & (py < h - 2)
    return out


def dark_decode_full_np(planes: F32, ksize: int, max_offset: float | None = None) -> tuple[F32, F32]:
    """The literal DarkPose decode on ``(M, H, W)`` float32 planes: blur the whole plane (zero-padded, float64),
    rescale to the raw maximum (float32), log, Taylor. Returns coords ``(M, 2)`` and maxvals ``(M,)`` float32.

    The blur is one OpenCV ``GaussianBlur`` call (float64, as the official code) over all planes stacked into
    a tall image with ``b`` zero rows between them and ``b`` zero columns on each side: every plane sees only
    zeros beyond its border, so the result is bit-identical to blurring each zero-padded plane on its own.
    """
    m, h, w = planes.shape
    b = (_tables(ksize).taps.size - 1) // 2
    flat = np.ascontiguousarray(planes, dtype=np.float32).reshape(m, h * w)
    px, py, maxvals = heatmap_maximum_np(flat, w)
    coords = _as_coords(px, py)
    if h < 5 or w < 5 or m == 0:
        return coords, maxvals
    canvas = np.zeros((m * (h + b) + b, w + 2 * b), np.float64)
    canvas[b:, b : b + w].reshape(m, h + b, w)[:, :h] = flat.reshape(m, h, w)
    canvas = cv2.GaussianBlur(canvas, (ksize, ksize), 0)
    blurred = canvas[b:, b : b + w].reshape(m, h + b, w)[:, :h].astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        blurred *= (maxvals / blurred.reshape(m, -1).max(axis=1))[:, None, None]
    lg = _log_floor(blurred)
    sel = np.flatnonzero(_inside(px, py, maxvals, h, w))
    if sel.size:
        d = np.array(STENCIL)
        idx = (sel * (h * w))[None, :] + (py[sel][None, :] + d[:, :1]) * w + (px[sel][None, :] + d[:, 1:])
        _refine(coords, sel, px[sel], py[sel], lg.reshape(-1)[idx], max_offset, None)
    return coords, maxvals


def dark_decode_np(planes: F32, ksize: int, max_offset: float | None = None) -> tuple[F32, F32]:
    """Fast exact DARK decode of ``(M, H, W)`` float32 planes (see the module docstring for the method).

    Returns:
        coords ``(M, 2)`` float32 ``(x, y)`` heatmap px and maxvals ``(M,)`` float32; identical to
        :func:`dark_decode_full_np` up to float64 summation order in the blur.
    """
    m, h, w = planes.shape
    t = _tables(ksize)
    planes = np.ascontiguousarray(planes, dtype=np.float32)
    flat = planes.reshape(m, h * w)
    px, py, maxvals = heatmap_maximum_np(flat, w)
    coords = _as_coords(px, py)
    if h < 5 or w < 5 or m == 0:
        return coords, maxvals
    sel = np.flatnonzero(_inside(px, py, maxvals, h, w))
    if sel.size == 0:
        return coords, maxvals
    sx, sy, peak = px[sel], py[sel], maxvals[sel]
    # far >= a tiny positive floor (still an upper bound) so that far · (−inf) masks the grid instead of giving NaN
    far = np.maximum(max_outside_box_np(flat, px, py, h, w, _CORE)[sel], np.float32(1e-30))
    r = _GRID + (ksize - 1) // 2
    patch = _patches(planes, sel, sx, sy, r)
    grid = _separable(patch.astype(np.float64), t.grid_taps)  # (S, 5, 5) exact blurred values, [x, y]
    local_max = grid.reshape(sel.size, -1).max(axis=1)
    # The bound only certifies: float32 on the core clamped at 0 (an upper bound with non-negative terms, so
    # its relative round-off is below 1e-6 and the 1e-5 slack covers it).
    c0 = r - _CORE
    core = np.maximum(patch[:, c0 : c0 + 2 * _CORE + 1, c0 : c0 + 2 * _CORE + 1], np.float32(0.0))
    ring = _separable(core, t.core_taps).reshape(sel.size, -1)
    ring += far[:, None] * t.ring_free
    bound = np.maximum(ring.max(axis=1), far + (peak - far) * np.float32(t.mass_beyond)).astype(np.float64)
    bound += _MARGIN * bound
    ok = (local_max >= bound) & (local_max > 0) & np.isfinite(local_max)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        st = grid.reshape(sel.size, -1)[:, _STENCIL_XY].T.astype(np.float32)  # (13, S)
        st *= peak / local_max.astype(np.float32)  # float32, as origin_max / max(blurred)
    _refine(coords, sel, sx, sy, _log_floor(st), max_offset, ok)
    bad = sel[~ok]
    if bad.size:
        coords[bad] = dark_decode_full_np(planes[bad], ksize, max_offset)[0]
    return coords, maxvals
