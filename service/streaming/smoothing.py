"""One-Euro filter (Casiez et al., CHI 2012) for keypoints, per track and per joint, vectorised.

Units: positions in px, time in s, cutoff frequencies in Hz. ``beta`` is in 1/px (cutoff grows by
``beta × |speed px/s|``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray


def _alpha(cutoff: NDArray[np.float64] | float, dt: float) -> NDArray[np.float64]:
    tau = 1.0 / (2.0 * math.pi * np.asarray(cutoff, dtype=np.float64))
    out: NDArray[np.float64] = 1.0 / (1.0 + tau / dt)
    return out


@dataclass
class OneEuroState:
    """Filter state of one track: last filtered values ``x`` ``(K, 2)``, derivative ``dx``, last time (s)."""

    x: NDArray[np.float64]
    dx: NDArray[np.float64]
    t: float


@dataclass
class KeypointSmoother:
    """One-Euro filters for the ``(x, y)`` of every joint of every track (scores pass through).

    Attributes:
        min_cutoff: Hz; lower = smoother when still, more lag.
        beta: speed coefficient (1/px); higher = less lag when moving.
        d_cutoff: Hz, cutoff of the derivative's own low-pass.
    """

    min_cutoff: float = 1.0
    beta: float = 0.007
    d_cutoff: float = 1.0
    states: dict[int, OneEuroState] = field(default_factory=dict)

    def __call__(self, track_id: int, keypoints: NDArray[np.floating], t: float) -> NDArray[np.float32]:
        """Filter one track's keypoints ``(K, 3)`` observed at time ``t`` (s); returns a new ``(K, 3)``."""
        kp = np.asarray(keypoints, dtype=np.float64)
        xy = kp[:, :2]
        st = self.states.get(track_id)
        if st is None or t <= st.t:
            self.states[track_id] = OneEuroState(xy.copy(), np.zeros_like(xy), t)
            return kp.astype(np.float32)
        dt = t - st.t
        dx = (xy - st.x) / dt
        a_d = _alpha(self.d_cutoff, dt)
        dx_hat = a_d * dx + (1.0 - a_d) * st.dx
        cutoff = self.min_cutoff + self.beta * np.abs(dx_hat)
        a = _alpha(cutoff, dt)
        x_hat = a * xy + (1.0 - a) * st.x
        st.x, st.dx, st.t = x_hat, dx_hat, t
        out = kp.copy()
        out[:, :2] = x_hat
        return out.astype(np.float32)

    def forget(self, keep: set[int]) -> None:
        """Drop the state of tracks not in ``keep`` (ended tracks)."""
        for tid in [k for k in self.states if k not in keep]:
            del self.states[tid]
