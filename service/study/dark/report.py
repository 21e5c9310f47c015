"""Outputs: the markdown table, the plot, and the CSV/JSON/markdown files."""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from .run import StudyResult, StudyRow

# ------------------------------------------------------------------------------------------------ output


def markdown_table(rows: Sequence[StudyRow]) -> str:
    """The results as a GitHub markdown table (AP in %, errors in px; see :class:`StudyRow`)."""
    head = (
        "| heatmap | σ | encoding | degradation | decoder | AP | AP50 | AP75 "
        "| mean err img px | median err img px | mean err img px (encoded) | mean err hm px (encoded) |\n"
        "|---|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    lines = [
        f"| {r.resolution} | {r.sigma:g} | {r.encoding} | {r.degradation} | {r.decoder_label} "
        f"| {100 * r.AP:.2f} | {100 * r.AP50:.2f} | {100 * r.AP75:.2f} "
        f"| {r.err_img_mean:.3f} | {r.err_img_median:.3f} | {r.err_img_mean_enc:.3f} "
        f"| {r.err_hm_mean_enc:.4f} |"
        for r in rows
    ]
    return head + "\n".join(lines) + "\n"


def plot_study(rows: Sequence[StudyRow], path: Path, noise_label: str | None = None) -> None:
    """AP (top) and mean image-px error over encoded joints (bottom, log scale) vs heatmap resolution, one
    line per decoder (primary kernels): unbiased/clean, quantised/clean, and unbiased with ``noise_label``
    (default: the middle noise level present)."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    prim = [r for r in rows if r.primary]
    noises = sorted(
        {r.degradation for r in prim if r.degradation.startswith("noise")}, key=lambda s: float(s[5:])
    )
    if noise_label is None and noises:
        noise_label = noises[len(noises) // 2]
    panels = [
        ("unbiased", "none", "unbiased targets, clean"),
        ("quantised", "none", "quantised targets, clean"),
    ]
    if noise_label is not None:
        panels.append(
            ("unbiased", noise_label, f"unbiased targets, {noise_label.replace('noise', 'noise σ=')}")
        )
    res_order = sorted({(r.heatmap_w * r.heatmap_h, r.resolution) for r in prim})
    labels = [lab for _, lab in res_order]
    fig, axes = plt.subplots(2, len(panels), figsize=(4.2 * len(panels), 6.4), squeeze=False, sharex=True)
    styles = {"argmax": ("tab:gray", "s"), "quarter": ("tab:blue", "^"), "dark": ("tab:red", "o")}
    for col, (enc, deg, title) in enumerate(panels):
        for dec, (color, marker) in styles.items():
            pts = {
                r.resolution: r
                for r in prim
                if r.encoding == enc and r.degradation == deg and r.decoder == dec
            }
            xs = [i for i, lab in enumerate(labels) if lab in pts]
            if not xs:
                continue
            name = pts[labels[xs[0]]].decoder_label if dec != "dark" else "DARK"
            axes[0, col].plot(
                xs, [100 * pts[labels[i]].AP for i in xs], marker=marker, color=color, label=name
            )
            axes[1, col].plot(
                xs, [pts[labels[i]].err_img_mean_enc for i in xs], marker=marker, color=color, label=name
            )
        axes[0, col].set_title(title, fontsize=10)
        axes[0, col].grid(alpha=0.3)
        axes[1, col].grid(alpha=0.3)
        axes[1, col].set_yscale("log")
        axes[1, col].yaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        axes[1, col].yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        axes[1, col].set_xticks(range(len(labels)), labels)
        axes[1, col].set_xlabel("heatmap resolution (H×W)")
    axes[0, 0].set_ylabel("COCO keypoint AP (%)")
    axes[1, 0].set_ylabel("mean error, encoded joints (image px)")
    axes[0, 0].legend(fontsize=8, loc="lower right")
    fig.suptitle("Decoding GT-synthesised heatmaps, COCO val2017 subset (no network)", fontsize=11)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)


def write_outputs(result: StudyResult, out_dir: Path) -> dict[str, Path]:
    """Write ``results.csv``, ``results.json`` (rows + meta), ``results.md`` and ``dark_study.png``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "csv": out_dir / "results.csv",
        "json": out_dir / "results.json",
        "md": out_dir / "results.md",
        "png": out_dir / "dark_study.png",
    }
    records = [asdict(r) for r in result.rows]
    with paths["csv"].open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(records[0]) if records else [])
        writer.writeheader()
        writer.writerows(records)
    paths["json"].write_text(json.dumps({"meta": result.meta, "rows": records}, indent=1) + "\n")
    paths["md"].write_text(markdown_table(result.rows))
    plot_study(result.rows, paths["png"])
    return paths
