"""Training curves: what a run's per-epoch history says about learning and selection."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from am4cm.io import atomic_path


def plot_training_curves(history: pd.DataFrame, path: Path | str, title: str) -> None:
    """Loss (train and val), val OA and mIoU, and the learning rate per epoch, selected epoch marked."""
    best = history.loc[history["val_miou"].idxmax()]
    fig, (ax_loss, ax_score, ax_lr) = plt.subplots(1, 3, figsize=(14, 4), constrained_layout=True)
    ax_loss.plot(history["epoch"], history["train_loss"], marker="o", label="train")
    ax_loss.plot(history["epoch"], history["val_loss"], marker="o", label="val")
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy per labelled pixel", title="Loss")
    ax_loss.legend()
    ax_score.plot(history["epoch"], history["val_oa"], marker="o", label="val overall accuracy")
    ax_score.plot(
        history["epoch"], history["val_miou"], marker="o", label="val mIoU (classes 0-18)"
    )
    ax_score.set(xlabel="epoch", ylabel="score", ylim=(0, 1), title="Validation scores")
    ax_score.legend(loc="lower right")
    ax_lr.plot(history["epoch"], history["learning_rate"], marker="o", color="gray")
    ax_lr.set(xlabel="epoch", ylabel="learning rate (end of epoch)", title="Schedule")
    for axis in (ax_loss, ax_score, ax_lr):
        axis.axvline(best["epoch"], color="black", linestyle=":", linewidth=1)
        axis.grid(alpha=0.3)
    ax_score.annotate(
        f"selected: epoch {int(best['epoch'])}\nval mIoU {best['val_miou']:.3f}",
        (best["epoch"], best["val_miou"]),
        textcoords="offset points",
        xytext=(-10, -40),
        ha="right",
    )
    fig.suptitle(title)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
