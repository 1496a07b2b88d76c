"""PNG figures for the evaluation report (matplotlib, headless).

Why PNGs next to the markdown: the report is read in a code review or a
browser, where a reliability diagram says more than a table of bins.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ecomstream.data.corpus import LABEL_NAMES
from ecomstream.model.metrics import bucket_names


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_confusion(results: Mapping[str, Mapping[str, Any]], path: Path) -> Path:
    """One confusion-matrix heatmap per classifier, side by side."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(results), figsize=(4.2 * len(results), 3.8), squeeze=False)
    for ax, (name, res) in zip(axes[0], results.items(), strict=True):
        m = np.asarray(res["confusion_matrix"])
        ax.imshow(m, cmap="Blues")
        for (i, j), v in np.ndenumerate(m):
            ax.text(
                j,
                i,
                str(v),
                ha="center",
                va="center",
                color="white" if v > m.max() / 2 else "black",
            )
        ax.set_xticks(range(len(LABEL_NAMES)), LABEL_NAMES)
        ax.set_yticks(range(len(LABEL_NAMES)), LABEL_NAMES)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{name}\naccuracy {res['accuracy']:.3f}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_reliability(results: Mapping[str, Mapping[str, Any]], path: Path) -> Path:
    """Reliability diagram: accuracy against confidence per bin, with the diagonal."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0.5, 1], [0.5, 1], "k--", lw=1, label="perfect calibration")
    for name, res in results.items():
        rel = res["reliability"]
        pts = [
            (c, a, n)
            for c, a, n in zip(rel["confidence"], rel["accuracy"], rel["counts"], strict=True)
            if c is not None
        ]
        if pts:
            c, a, _ = zip(*pts, strict=True)
            ax.plot(c, a, marker="o", label=f"{name} (ECE {res['ece']:.3f})")
    ax.set_xlim(0.45, 1.0)
    ax.set_ylim(0.0, 1.0)
    ax.set_xlabel("confidence (top-class probability)")
    ax.set_ylabel("accuracy")
    ax.set_title("Reliability on the test split")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_by_length(results: Mapping[str, Mapping[str, Any]], path: Path) -> Path:
    """Grouped bars: accuracy per review-length bucket, with bucket sizes."""
    plt = _pyplot()
    names = bucket_names()
    fig, ax = plt.subplots(figsize=(7, 4))
    width = 0.8 / max(1, len(results))
    x = np.arange(len(names))
    for k, (name, res) in enumerate(results.items()):
        acc = [res["by_length"][b]["accuracy"] for b in names]
        ax.bar(x + k * width, acc, width, label=name)
    counts = next(iter(results.values()))["by_length"]
    ax.set_xticks(x + width * (len(results) - 1) / 2, [f"{b}\nn={counts[b]['n']}" for b in names])
    ax.set_ylim(0.5, 1.0)
    ax.set_xlabel("review length (characters)")
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_summary(results: Mapping[str, Mapping[str, Any]], path: Path) -> Path:
    """Model vs baseline: accuracy, macro-F1 and ECE bars."""
    plt = _pyplot()
    metrics = ["accuracy", "macro_f1", "ece"]
    fig, ax = plt.subplots(figsize=(6, 4))
    width = 0.8 / max(1, len(results))
    x = np.arange(len(metrics))
    for k, (name, res) in enumerate(results.items()):
        values = [res[m] for m in metrics]
        bars = ax.bar(x + k * width, values, width, label=name)
        ax.bar_label(bars, fmt="%.3f", fontsize=7)
    ax.set_xticks(x + width * (len(results) - 1) / 2, metrics)
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8)
    ax.set_title("Model vs baseline (test split)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_plots(results: Mapping[str, Mapping[str, Any]], out: Path) -> list[Path]:
    """All four figures into ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    return [
        plot_confusion(results, out / "confusion_matrices.png"),
        plot_reliability(results, out / "reliability.png"),
        plot_by_length(results, out / "accuracy_by_length.png"),
        plot_summary(results, out / "model_vs_baseline.png"),
    ]
