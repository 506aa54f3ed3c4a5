"""Figures of the crop-classification results: confusion matrices, per-class F1, example maps.

Each function draws on its own :class:`matplotlib.figure.Figure` (no pyplot state, Agg
canvas) and writes one PNG atomically: to a temporary file beside the target, then
``os.replace``.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap, LogNorm, Normalize
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from matplotlib.patches import Patch

from am4cm.data.facts import (
    BANDS,
    N_BANDS,
    REFLECTANCE_SCALE,
    RGB_CHANNELS,
    SCORED_CLASSES,
    VOID_CLASS,
    class_colours,
    class_names,
)
from am4cm.evaluation import scores_from_confusion
from am4cm.io import atomic_path

EDGE = "0.15"
"""Dark edge drawn around class-colour patches so white and black classes stay visible."""
VOID_HATCH = "////"
ERROR_CODES: tuple[tuple[str, str], ...] = (
    ("correct", "#d9d9d9"),
    ("wrong", "#d7191c"),
    ("void truth (ignored)", "#2c7bb6"),
)
"""Labels and colours of the error map, indexed by code 0, 1, 2."""


@dataclass(frozen=True)
class MapSample:
    """One patch for :func:`plot_classification_maps`.

    ``rgb`` is an (H, W, 3) float image in 0-1 of a clear acquisition taken on ``date``;
    ``truth`` and ``prediction`` are (H, W) class-id maps.
    """

    patch_id: int | str
    rgb: np.ndarray
    date: dt.date | str
    truth: np.ndarray
    prediction: np.ndarray


def _save(fig: Figure, path: str | os.PathLike[str], dpi: int = 150) -> None:
    """Write ``fig`` as PNG atomically (see :func:`am4cm.io.atomic_path`)."""
    with atomic_path(path) as temporary:
        fig.savefig(temporary, format="png", dpi=dpi)


def _compact(count: float) -> str:
    """A count in at most four characters: 7, 512, 3.4k, 12k, 1.2M."""
    if count < 1000:
        return f"{count:.0f}"
    for divisor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if count >= divisor:
            value = count / divisor
            return f"{value:.1f}{suffix}" if round(value, 1) < 10 else f"{value:.0f}{suffix}"
    return f"{count:.0f}"


def _text_colour(rgba: Sequence[float]) -> str:
    """Black or white, whichever reads better on a cell of colour ``rgba``."""
    luminance = 0.299 * rgba[0] + 0.587 * rgba[1] + 0.114 * rgba[2]
    return "black" if luminance > 0.5 else "white"


def _heatmap(
    ax: Axes,
    values: np.ndarray,
    norm: Normalize,
    cmap: str,
    bad: str,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    texts: np.ndarray,
) -> AxesImage:
    """Draw a square matrix (NaN cells in colour ``bad``) with tick labels and cell texts."""
    colour_map = colormaps[cmap].with_extremes(bad=bad)
    image = ax.imshow(
        np.ma.masked_invalid(values), cmap=colour_map, norm=norm, interpolation="nearest"
    )
    ticks = np.arange(len(row_labels))
    ax.set_xticks(ticks, col_labels, rotation=50, ha="right", rotation_mode="anchor", fontsize=8)
    ax.set_yticks(ticks, row_labels, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_xticks(ticks[:-1] + 0.5, minor=True)
    ax.set_yticks(ticks[:-1] + 0.5, minor=True)
    ax.grid(which="minor", color="0.85", linewidth=0.5)
    ax.tick_params(which="minor", length=0)
    for (row, col), text in np.ndenumerate(texts):
        if text:
            colour = _text_colour(image.cmap(norm(values[row, col])))
            ax.text(col, row, text, ha="center", va="center", fontsize=6, color=colour)
    return image


def plot_confusion(matrix: np.ndarray, path: str | os.PathLike[str], title: str) -> None:
    """Confusion matrix of classes 0-18 (void dropped): log counts and row-normalised recall.

    Empty cells stay white; count cells are labelled in compact form, recall cells with their
    percentage when it rounds to at least 1 %. The headline scores go under the title.
    """
    full = np.asarray(matrix)
    scores = scores_from_confusion(full)
    scored = list(SCORED_CLASSES)
    counts = full[np.ix_(scored, scored)].astype(np.float64)
    support = counts.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = np.where(support > 0, counts / support, np.nan)
    names = [class_names()[c] for c in scored]
    count_texts = np.where(counts > 0, np.vectorize(_compact, otypes=[str])(counts), "")
    percent = np.nan_to_num(recall * 100)
    recall_texts = np.where(percent >= 0.5, np.char.mod("%.0f", percent), "")

    fig = Figure(figsize=(22, 10.5), layout="constrained")
    count_ax, recall_ax = fig.subplots(1, 2)
    count_norm = LogNorm(vmin=1, vmax=max(counts.max(), 10))
    image = _heatmap(
        count_ax,
        np.where(counts > 0, counts, np.nan),
        count_norm,
        "viridis",
        "white",
        names,
        names,
        count_texts,
    )
    fig.colorbar(image, ax=count_ax, shrink=0.75, label="pixels (log scale; blank = 0)")
    count_ax.set_title("pixel counts")
    supported = [f"{name} (n={_compact(n)})" for name, n in zip(names, support[:, 0], strict=True)]
    image = _heatmap(
        recall_ax, recall, Normalize(0, 1), "Blues", "0.8", supported, names, recall_texts
    )
    fig.colorbar(image, ax=recall_ax, shrink=0.75, label="share of the true class's pixels")
    recall_ax.set_title("row-normalised (diagonal = recall, %; grey row = no true pixel)")
    fig.suptitle(
        f"{title}\nOA {scores['overall_accuracy']:.1%}   mIoU {scores['mean_iou']:.1%}   "
        f"macro F1 {scores['macro_f1']:.1%}   scored pixels {scores['n_pixels']:,}   "
        f"void truth ignored; predicted-void pixels dropped: {scores['n_predicted_void']:,}",
        fontsize=13,
    )
    _save(fig, path)


def plot_per_class_f1(table: pd.DataFrame, path: str | os.PathLike[str], title: str) -> None:
    """Horizontal F1 bars per class from a :func:`am4cm.evaluation.per_class_table`.

    Classes are sorted by F1 (best on top) and drawn in their official colours with a dark
    edge; the support (true pixels) is written beside each bar. Classes absent from the
    test set (F1 NaN) are listed at the bottom as "absent". The dashed line is macro F1.
    """
    colours = class_colours()
    present = table[table["f1"].notna()].sort_values(["f1", "class_id"], ascending=[False, True])
    absent = table[table["f1"].isna()].sort_values("class_id")
    rows = pd.concat([present, absent], ignore_index=True)
    positions = np.arange(len(rows))

    fig = Figure(figsize=(9, 0.32 * len(rows) + 1.6), layout="constrained")
    ax = fig.subplots()
    ax.barh(
        positions,
        rows["f1"].fillna(0).to_numpy(),
        color=[colours[c] for c in rows["class_id"]],
        edgecolor=EDGE,
        linewidth=0.8,
        height=0.75,
    )
    for position, row in zip(positions, rows.itertuples(index=False), strict=True):
        if np.isnan(row.f1):
            note = "absent (no true or predicted pixel)"
        else:
            note = f"{row.f1:.2f}   n={row.support:,}"
            if row.support == 0:
                note += f" (predicted {row.predicted:,})"
        missing = np.isnan(row.f1)
        x = 0.01 if missing else row.f1 + 0.01
        ax.text(
            x,
            position,
            note,
            va="center",
            fontsize=8,
            color="0.45" if missing else "black",
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1},
        )
    if len(present):
        macro = present["f1"].mean()
        ax.axvline(
            macro,
            color="0.3",
            linestyle="--",
            linewidth=1,
            label=f"macro F1 {macro:.2f} (absent classes excluded)",
        )
        ax.legend(loc="lower right", fontsize=8)
    ax.set_yticks(positions, rows["class_name"], fontsize=9)
    ax.invert_yaxis()
    ax.set_xlim(0, 1.3)
    ax.set_xticks(np.linspace(0, 1, 6))
    ax.set_xlabel("F1 score (n = true pixels of the class)")
    ax.spines[["top", "right"]].set_visible(False)
    ax.set_title(title)
    _save(fig, path)


def rgb_composite(frame: np.ndarray, low: float = 2.0, high: float = 98.0) -> np.ndarray:
    """True-colour (H, W, 3) image in 0-1 of one (10, H, W) int16 PASTIS frame.

    Takes B4, B3, B2 (``RGB_CHANNELS``) as reflectance and stretches them linearly between
    their joint ``low`` and ``high`` percentiles (one stretch for the three channels, which
    keeps the colour balance), clipping outside. A constant frame gives a black image.
    """
    array = np.asarray(frame)
    if array.ndim != 3 or array.shape[0] != N_BANDS:
        raise ValueError(f"expected a ({N_BANDS}, H, W) frame, got {array.shape}")
    rgb = np.moveaxis(array[list(RGB_CHANNELS)].astype(np.float64) / REFLECTANCE_SCALE, 0, -1)
    lower, upper = np.percentile(rgb, [low, high])
    if upper <= lower:
        return np.zeros_like(rgb)
    return np.clip((rgb - lower) / (upper - lower), 0.0, 1.0)


def clearest_date(s2: np.ndarray) -> int:
    """Index of the date of a (T, 10, H, W) series with the lowest median blue (B2) value.

    A heuristic for "clear": clouds and haze brighten the blue band over the whole scene,
    so the darkest median blue is usually the clearest date (dark cloud shadows alone can
    fool it). Frames that are entirely 0 (padding) are skipped; ties go to the first date.
    """
    array = np.asarray(s2)
    if array.ndim != 4 or array.shape[1] != N_BANDS:
        raise ValueError(f"expected a (T, {N_BANDS}, H, W) series, got {array.shape}")
    blue = array[:, BANDS.index("B2")].reshape(array.shape[0], -1)
    filled = np.any(blue != 0, axis=1)
    if not filled.any():
        raise ValueError("every frame of the series is empty")
    medians = np.where(filled, np.median(blue, axis=1), np.inf)
    return int(np.argmin(medians))


def _class_image(labels: np.ndarray) -> np.ndarray:
    """(H, W, 3) official colours of a class map; the void class comes out white."""
    return class_colours()[np.asarray(labels)]


def _hatch_void(ax: Axes, labels: np.ndarray) -> None:
    """Hatch the void pixels of a class map drawn with ``imshow``."""
    void = (np.asarray(labels) == VOID_CLASS).astype(float)
    if void.any():
        height, width = void.shape
        ax.contourf(
            np.arange(width),
            np.arange(height),
            void,
            levels=[0.5, 1.5],
            colors="none",
            hatches=[VOID_HATCH],
        )


def _error_codes(truth: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """0 correct, 1 wrong (including predicted void), 2 void truth (ignored by the metrics)."""
    codes = np.where(truth == prediction, 0, 1)
    return np.where(truth == VOID_CLASS, 2, codes)


def plot_classification_maps(
    samples: Sequence[MapSample], path: str | os.PathLike[str], title: str
) -> None:
    """One row per patch: RGB of a clear date, ground truth, prediction and error map.

    Class maps use the official colours, void white and hatched; the error map shows
    correct / wrong / void-truth pixels in three colours (a non-void pixel predicted void
    counts as wrong), and its title the share of wrong pixels among the non-void ones.
    One legend lists the classes that appear and the error colours.
    """
    if not samples:
        raise ValueError("no sample to draw")
    names = class_names()
    colours = class_colours()
    error_map = ListedColormap([colour for _, colour in ERROR_CODES])

    fig = Figure(figsize=(13, 3.3 * len(samples) + 1.8), layout="constrained")
    axes = fig.subplots(len(samples), 4, squeeze=False)
    seen: set[int] = set()
    for row, sample in zip(axes, samples, strict=True):
        truth = np.asarray(sample.truth)
        prediction = np.asarray(sample.prediction)
        seen.update(np.unique(truth).tolist(), np.unique(prediction).tolist())
        errors = _error_codes(truth, prediction)
        scored = errors != 2
        wrong = (errors[scored] == 1).mean() if scored.any() else float("nan")

        row[0].imshow(np.clip(sample.rgb, 0, 1), interpolation="nearest")
        row[0].set_title(f"patch {sample.patch_id}: RGB {sample.date}", fontsize=10)
        for ax, labels, name in (
            (row[1], truth, "ground truth"),
            (row[2], prediction, "prediction"),
        ):
            ax.imshow(_class_image(labels), interpolation="nearest")
            _hatch_void(ax, labels)
            ax.set_title(name, fontsize=10)
        row[3].imshow(errors, cmap=error_map, vmin=-0.5, vmax=2.5, interpolation="nearest")
        row[3].set_title(f"errors: {wrong:.1%} of non-void pixels wrong", fontsize=10)
        for ax in row:
            ax.set_xticks([])
            ax.set_yticks([])

    handles = [
        Patch(facecolor=colours[c], edgecolor=EDGE, label=names[c])
        for c in sorted(seen - {VOID_CLASS})
    ]
    if VOID_CLASS in seen:
        handles.append(
            Patch(
                facecolor="white",
                edgecolor=EDGE,
                hatch=VOID_HATCH,
                label=f"{names[VOID_CLASS]} (ignored)",
            )
        )
    handles += [
        Patch(facecolor=colour, edgecolor=EDGE, label=f"error map: {label}")
        for label, colour in ERROR_CODES
    ]
    fig.legend(handles=handles, loc="outside lower center", ncol=4, fontsize=9, frameon=False)
    fig.suptitle(title, fontsize=13)
    _save(fig, path)
