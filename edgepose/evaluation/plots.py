"""Accuracy plots (PNG): error against |yaw| and the CDF of per-face errors. Needs matplotlib (edgepose[bench])."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .metrics import angle_errors


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(f"plots need matplotlib ({exc}): pip install 'edgepose[bench]'") from None
    return plt


def plot_errors(results: dict[str, tuple[np.ndarray, np.ndarray]], out_dir: str | Path, title: str = "") -> list[Path]:
    """Write error_vs_yaw.png and error_cdf.png for {label: (pred, truth)}; returns the paths."""
    plt = _pyplot()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    edges = np.arange(0, 100, 10)
    fig, ax = plt.subplots(figsize=(7, 4.2))
    for label, (pred, truth) in results.items():
        err = angle_errors(pred, truth).mean(1)
        yaw = np.abs(truth[:, 0])
        idx = np.digitize(yaw, edges[1:-1])
        means = [err[idx == i].mean() if (idx == i).any() else np.nan for i in range(len(edges) - 1)]
        ax.plot(edges[:-1] + 5, means, marker="o", label=label)
    ax.set_xlabel("|yaw| of the label (degrees, 10-degree bins)")
    ax.set_ylabel("mean absolute error (degrees, mean of yaw/pitch/roll)")
    ax.set_title(title or "error against yaw")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    paths = [out / "error_vs_yaw.png"]
    fig.savefig(paths[0], dpi=90)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for label, (pred, truth) in results.items():
        err = np.sort(angle_errors(pred, truth).mean(1))
        ax.plot(err, np.arange(1, len(err) + 1) / len(err), label=label)
    ax.axvline(5, color="grey", ls="--", lw=0.8)
    ax.axvline(15, color="grey", ls=":", lw=0.8)
    ax.set_xlim(0, 30)
    ax.set_xlabel("per-face mean absolute error (degrees)")
    ax.set_ylabel("share of faces")
    ax.set_title((title + ": " if title else "") + "CDF of errors (dashed: 5 deg, dotted: 15 deg)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(out / "error_cdf.png")
    fig.savefig(paths[1], dpi=90)
    plt.close(fig)
    return paths
