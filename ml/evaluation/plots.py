"""PNG figures for evaluation: confusion matrix and reliability diagram."""
from __future__ import annotations

from pathlib import Path

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def confusion_matrix_png(cm: np.ndarray, classes, path: Path, title: str = "Confusion matrix") -> None:
    plt = _plt()
    cm = np.asarray(cm)
    fig, ax = plt.subplots(figsize=(5.5, 4.8))
    ax.imshow(cm, cmap="Blues")
    ax.set_xticks(range(cm.shape[1]), classes, rotation=30, ha="right")
    ax.set_yticks(range(cm.shape[0]), classes[: cm.shape[0]])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center",
                    color="white" if cm[i, j] > cm.max() / 2 else "black")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def reliability_png(bins_raw: list[dict], bins_cal: list[dict], path: Path,
                    ece_raw: float, ece_cal: float) -> None:
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
    for bins, name, ece in ((bins_raw, "uncalibrated", ece_raw), (bins_cal, "temperature-scaled", ece_cal)):
        pts = [(b["confidence"], b["accuracy"]) for b in bins if b["count"]]
        if pts:
            xs, ys = zip(*pts)
            ax.plot(xs, ys, "o-", label=f"{name} (ECE {100 * ece:.2f}%)")
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.legend(loc="upper left")
    ax.set_title("Reliability diagram")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
