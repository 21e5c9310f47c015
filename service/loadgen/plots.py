"""Small PNG plots of a load run (matplotlib, Agg backend): throughput vs concurrency, latency CDF."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .core import PhaseResult


def plot_load(phases: Sequence[PhaseResult], out_dir: str | Path, title: str = "") -> list[Path]:
    """Write ``throughput_vs_concurrency.png`` (closed-loop phases: requests/s and persons/s) and
    ``latency_cdf.png`` (successful requests of every phase, ms) to ``out_dir``; returns the paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    closed = [p for p in phases if p.mode == "closed"]
    if closed:
        s = [p.summary() for p in closed]
        conc = [x["concurrency"] for x in s]
        fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
        ax.plot(conc, [x["requests_per_s"] for x in s], "o-", label="requests/s")
        ax.plot(conc, [x["persons_per_s"] for x in s], "s--", label="persons/s")
        ax.set_xscale("log", base=2)
        ax.set_xticks(conc, [str(c) for c in conc])
        ax.set_xlabel("concurrency (closed loop)")
        ax.set_ylabel("throughput (1/s)")
        ax.set_title(title or "throughput vs concurrency", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = out / "throughput_vs_concurrency.png"
        fig.savefig(path)
        plt.close(fig)
        written.append(path)
    fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
    for p in phases:
        lat = np.sort([r.latency * 1000.0 for r in p.records if r.outcome == "ok"])
        if len(lat):
            label = f"c={int(p.level)}" if p.mode == "closed" else f"{p.level:g} req/s"
            ax.plot(lat, np.arange(1, len(lat) + 1) / len(lat), label=label)
    ax.set_xscale("log")
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("fraction of requests")
    ax.set_title(title or "latency CDF", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    path = out / "latency_cdf.png"
    fig.savefig(path)
    plt.close(fig)
    written.append(path)
    return written
