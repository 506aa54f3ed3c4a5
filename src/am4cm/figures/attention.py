"""Figures of the attention-as-cloud-mask study: maps, time series, curves, distributions, AUCs.

Each function draws on its own :class:`matplotlib.figure.Figure` (no pyplot state, Agg
canvas) and writes one PNG atomically (temporary file beside the target, then ``os.replace``).
"""

from __future__ import annotations

import datetime as dt
import math
import os
from collections.abc import Sequence
from itertools import cycle

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib import colormaps
from matplotlib.colors import LogNorm, Normalize, to_rgba
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from am4cm.attention.detection import CATEGORY_NAMES, CODES, REFERENCE_PREFIX, Curve
from am4cm.clouds import REF_CLEAR, REF_CLOUD, REF_SHADOW, REF_THIN
from am4cm.io import atomic_path

PathLike = str | os.PathLike[str]
REFERENCE_COLOURS: dict[int, str] = {
    REF_CLEAR: "#d9d9d9",
    REF_CLOUD: "#2166ac",
    REF_THIN: "#92c5de",
    REF_SHADOW: "#762a83",
}
"""Display colour of each reference code; other values (no data) are left white."""
FLAG_COLOUR = (0.9, 0.1, 0.1, 0.55)
"""Overlay colour of the (pixel, date) pairs an attention threshold flags cloudy."""
CATEGORY_ORDER: tuple[str, ...] = ("clear", "thin cloud", "thick cloud", "shadow")


def _save(fig: Figure, path: PathLike, dpi: int = 130) -> None:
    """Write ``fig`` as PNG atomically."""
    with atomic_path(path) as temporary:
        fig.savefig(temporary, format="png", dpi=dpi)


def _date_text(date: dt.date | str) -> str:
    return date.isoformat() if isinstance(date, dt.date) else str(date)


def _reference_image(ref: np.ndarray) -> np.ndarray:
    """(H, W, 4) RGBA of a reference mask, white where the code is unknown."""
    image = np.ones((*ref.shape, 4))
    for code, colour in REFERENCE_COLOURS.items():
        image[ref == code] = to_rgba(colour)
    return image


def _reference_legend() -> list[Patch]:
    return [
        Patch(facecolor=REFERENCE_COLOURS[code], edgecolor="0.3", label=CATEGORY_NAMES[code])
        for code in CODES
    ]


def _cloud_fraction(ref: np.ndarray) -> float:
    known = np.isin(ref, CODES).sum()
    return float(np.isin(ref, (REF_CLOUD, REF_THIN)).sum() / known) if known else float("nan")


def _attention_norm(values: np.ndarray) -> Normalize:
    """A log colour scale from the 1st to the 99.5th percentile of the positive values."""
    positive = values[np.isfinite(values) & (values > 0)]
    if positive.size == 0:
        return Normalize(0.0, 1.0)
    low, high = np.percentile(positive, [1.0, 99.5])
    return LogNorm(low, max(high, low * 1.0001))


def plot_attention_dates(
    rgb_frames: np.ndarray,
    attention_maps: np.ndarray,
    references: np.ndarray,
    dates: Sequence[dt.date | str],
    threshold: float,
    path: PathLike,
    title: str,
    attention_label: str = "mean attention \u00d7 T",
) -> None:
    """One row per chosen date: RGB, attention map, attention < threshold over RGB, reference.

    ``rgb_frames`` (n, H, W, 3) in 0-1; ``attention_maps`` (n, H, W) on one shared log colour
    scale; ``references`` (n, H, W) reference codes; pairs with attention below
    ``threshold`` are flagged cloudy in the overlay column.
    """
    rgb_frames = np.asarray(rgb_frames, dtype=float)
    attention_maps = np.asarray(attention_maps, dtype=float)
    references = np.asarray(references)
    n_rows = len(dates)
    if not rgb_frames.shape[0] == attention_maps.shape[0] == references.shape[0] == n_rows:
        raise ValueError(
            "rgb_frames, attention_maps, references and dates must have one entry per date"
        )
    norm = _attention_norm(attention_maps)
    fig = Figure(figsize=(12.5, 3.0 * n_rows + 1.3), layout="constrained")
    fig.suptitle(title, fontsize=12)
    axes = fig.subplots(n_rows, 4, squeeze=False)
    headers = (
        "RGB\n(B4, B3, B2)",
        f"{attention_label}\n(shared log scale)",
        f"flagged cloudy where\n{attention_label} < {threshold:.3g}",
        "reference mask\n",
    )
    image = None
    for row, (rgb, attention, ref, date) in enumerate(
        zip(rgb_frames, attention_maps, references, dates, strict=True)
    ):
        flagged = attention < threshold
        axes[row, 0].imshow(np.clip(rgb, 0, 1))
        image = axes[row, 1].imshow(attention, cmap="viridis", norm=norm)
        axes[row, 2].imshow(np.clip(rgb, 0, 1))
        overlay = np.zeros((*flagged.shape, 4))
        overlay[flagged] = FLAG_COLOUR
        axes[row, 2].imshow(overlay)
        axes[row, 3].imshow(_reference_image(ref), interpolation="nearest")
        axes[row, 0].set_ylabel(_date_text(date), fontsize=11)
        axes[row, 1].set_xlabel(f"median {np.nanmedian(attention):.3g}", fontsize=9)
        axes[row, 2].set_xlabel(f"{flagged.mean():.0%} of pixels flagged", fontsize=9)
        axes[row, 3].set_xlabel(f"reference cloud fraction {_cloud_fraction(ref):.0%}", fontsize=9)
        for ax in axes[row]:
            ax.set_xticks([])
            ax.set_yticks([])
    for ax, header in zip(axes[0], headers, strict=True):
        ax.set_title(header, fontsize=10)
    colourbar = fig.colorbar(image, ax=axes[:, 1], shrink=0.8, location="left", pad=0.02)
    colourbar.set_label(attention_label)
    if norm.vmin <= threshold <= norm.vmax:
        colourbar.ax.axhline(threshold, color=FLAG_COLOUR[:3], linewidth=2)
    fig.legend(
        handles=[*_reference_legend(), Patch(facecolor=FLAG_COLOUR, label="flagged by attention")],
        loc="outside lower center",
        ncols=5,
        fontsize=9,
    )
    _save(fig, path)


def plot_time_series_panel(
    rgb_thumbnails: np.ndarray,
    mean_attention_per_date: np.ndarray,
    cloud_fraction_per_date: np.ndarray,
    dates: Sequence[dt.date | str],
    path: PathLike,
    title: str,
    attention_label: str = "mean attention \u00d7 T",
    n_cols: int = 10,
) -> None:
    """Every date's RGB thumbnail with its mean attention and cloud fraction, then both over time.

    ``rgb_thumbnails`` (T, h, w, 3) in 0-1; the two per-date series are (T,). Dates the
    reference calls mostly cloudy (fraction >= 0.5) get a red frame.
    """
    attention = np.asarray(mean_attention_per_date, dtype=float)
    fraction = np.asarray(cloud_fraction_per_date, dtype=float)
    n_dates = len(dates)
    if not len(rgb_thumbnails) == attention.size == fraction.size == n_dates:
        raise ValueError("thumbnails, both series and dates must have one entry per date")
    n_cols = min(n_cols, n_dates)
    n_rows = math.ceil(n_dates / n_cols)
    fig = Figure(figsize=(1.45 * n_cols + 0.6, 1.85 * n_rows + 3.2), layout="constrained")
    fig.suptitle(title, fontsize=12)
    grid = fig.add_gridspec(n_rows + 1, n_cols, height_ratios=[*([1.0] * n_rows), 1.6])
    for k, (thumbnail, date) in enumerate(zip(rgb_thumbnails, dates, strict=True)):
        ax = fig.add_subplot(grid[k // n_cols, k % n_cols])
        ax.imshow(np.clip(np.asarray(thumbnail, dtype=float), 0, 1))
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(_date_text(date), fontsize=7)
        ax.set_xlabel(f"att {attention[k]:.2f}\ncloud {fraction[k]:.0%}", fontsize=7)
        cloudy = fraction[k] >= 0.5
        for spine in ax.spines.values():
            spine.set_edgecolor("#d7191c" if cloudy else "0.6")
            spine.set_linewidth(2.0 if cloudy else 0.6)
    line_ax = fig.add_subplot(grid[n_rows, :])
    on_calendar = all(isinstance(date, dt.date) for date in dates)
    positions = list(dates) if on_calendar else list(range(n_dates))
    line_ax.plot(positions, attention, "o-", color="#1b9e77", markersize=3, label=attention_label)
    line_ax.set_ylabel(attention_label, color="#1b9e77")
    line_ax.set_xlabel("acquisition date" if on_calendar else "date index")
    twin = line_ax.twinx()
    twin.plot(
        positions, fraction, "s--", color="#d95f02", markersize=3, label="reference cloud fraction"
    )
    twin.set_ylabel("reference cloud fraction", color="#d95f02")
    twin.set_ylim(-0.02, 1.02)
    frame = Patch(
        facecolor="none",
        edgecolor="#d7191c",
        linewidth=2,
        label="red frame: cloud fraction >= 50 %",
    )
    line_ax.legend(
        handles=[*line_ax.get_lines(), *twin.get_lines(), frame],
        loc="lower left",
        bbox_to_anchor=(0.0, 1.0),
        ncols=3,
        fontsize=8,
        frameon=False,
    )
    line_ax.grid(alpha=0.3)
    _save(fig, path)


def plot_roc_pr(curves: Sequence[Curve], path: PathLike, title: str) -> None:
    """ROC and precision-recall curves, one row per reference: a line per attention score, and
    each reference detector (a binary ``ref:`` score) as its single operating point."""
    if not curves:
        raise ValueError("no curves to plot")
    references = list(dict.fromkeys(curve.reference for curve in curves))
    scores = list(dict.fromkeys(curve.score for curve in curves))
    colours = colormaps["tab10" if len(scores) <= 10 else "tab20"].colors
    palette = dict(zip(scores, cycle(colours), strict=False))
    fig = Figure(figsize=(12, 4.2 * len(references) + 0.8), layout="constrained")
    fig.suptitle(title, fontsize=12)
    axes = fig.subplots(len(references), 2, squeeze=False)
    for (roc_ax, pr_ax), reference in zip(axes, references, strict=True):
        for curve in (c for c in curves if c.reference == reference):
            label = f"{curve.score}: AUC {curve.auc:.3f}, AP {curve.ap:.3f}"
            if curve.score.startswith(REFERENCE_PREFIX):
                style = {"color": palette[curve.score], "marker": "D", "linestyle": "none"}
                roc_ax.plot(curve.fpr[1:-1], curve.tpr[1:-1], label=label, **style)
                pr_ax.plot(curve.recall[1:-1], curve.precision[1:-1], **style)
            else:
                style = {"color": palette[curve.score], "linewidth": 1.4}
                roc_ax.plot(curve.fpr, curve.tpr, label=label, **style)
                pr_ax.plot(curve.recall[1:], curve.precision[1:], **style)
        roc_ax.plot([0, 1], [0, 1], color="0.6", linewidth=0.8, linestyle=":")
        roc_ax.set(xlabel="false positive rate (clear pairs flagged)", ylabel="true positive rate")
        roc_ax.set_title(
            f"ROC against the {reference} mask (cloudy = low clear score)", fontsize=10
        )
        pr_ax.set(xlabel="recall", ylabel="precision", ylim=(0, 1.02))
        pr_ax.set_title(f"precision-recall against the {reference} mask", fontsize=10)
        for ax in (roc_ax, pr_ax):
            ax.set_xlim(0, 1)
            ax.grid(alpha=0.3)
        roc_ax.legend(loc="lower right", fontsize=7, title="score (diamond: detector)")
    _save(fig, path)


def plot_attention_distributions(
    samples: pd.DataFrame,
    path: PathLike,
    title: str,
    value_label: str = "attention \u00d7 T",
) -> None:
    """Violins (log scale) of sampled scores per category: clear, thin cloud, thick cloud, shadow.

    ``samples`` has columns ``value`` and ``category`` (e.g. from
    :func:`am4cm.attention.detection.sample_by_category`), optionally ``reference`` for hue.
    Non-positive values are drawn at a floor below the smallest positive one.
    """
    frame = samples[np.isfinite(samples["value"])].copy()
    positive = frame.loc[frame["value"] > 0, "value"]
    if positive.empty:
        raise ValueError("no positive values to plot")
    frame["value"] = frame["value"].clip(lower=positive.min() / 10)
    order = [name for name in CATEGORY_ORDER if (frame["category"] == name).any()]
    order += sorted(set(frame["category"]) - set(order))
    hue = "reference" if "reference" in frame.columns else None
    fig = Figure(figsize=(2.0 * len(order) + 3.0, 5.2), layout="constrained")
    ax = fig.subplots()
    sns.violinplot(
        data=frame,
        x="category",
        y="value",
        hue=hue,
        order=order,
        log_scale=True,
        cut=0,
        inner="quartile",
        density_norm="width",
        ax=ax,
        color=None if hue else "#80b1d3",
    )
    counts = frame["category"].value_counts()
    ax.set_xticks(range(len(order)))
    ax.set_xticklabels([f"{name}\n(n={counts.get(name, 0):,})" for name in order])
    ax.axhline(1.0, color="0.3", linestyle="--", linewidth=0.9, label="uniform attention (1)")
    ax.set(xlabel="reference category of the (pixel, date)", ylabel=f"{value_label} (log scale)")
    ax.set_title(title, fontsize=12)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="best")
    _save(fig, path)


def plot_auc_heatmap(table: pd.DataFrame, path: PathLike, title: str) -> None:
    """Test AUC of each head's score against each reference, one panel per task (subset "all")."""
    rows = table[
        (table["metric"] == "auc")
        & (table["subset"] == "all")
        & table["score"].str.fullmatch(r"head_\d+")
    ]
    if rows.empty:
        raise ValueError("the table holds no head_k AUC rows")
    tasks = sorted(rows["task"].unique())
    heads = sorted(rows["score"].unique(), key=lambda name: int(name.split("_")[1]))
    low = min(0.5, float(np.nanmin(rows["value"])))
    width = 2.5 + len(tasks) * (1.2 + 1.1 * rows["reference"].nunique())
    fig = Figure(figsize=(width, 0.42 * len(heads) + 2.0), layout="constrained")
    fig.suptitle(title, fontsize=12)
    axes = fig.subplots(1, len(tasks), squeeze=False)[0]
    for k, (ax, task) in enumerate(zip(axes, tasks, strict=True)):
        grid = rows[rows["task"] == task].pivot_table(
            index="score", columns="reference", values="value", aggfunc="first"
        )
        grid = grid.reindex(heads)
        sns.heatmap(
            grid,
            ax=ax,
            annot=True,
            fmt=".3f",
            cmap="viridis",
            vmin=low,
            vmax=1.0,
            cbar=k == len(tasks) - 1,
            cbar_kws={"label": "test ROC AUC (0.5 = chance)"},
            linewidths=0.5,
            annot_kws={"fontsize": 8},
        )
        ax.set_title(f"{task} vs clear", fontsize=10)
        ax.set(xlabel="reference", ylabel="head" if k == 0 else "")
        ax.tick_params(axis="x", rotation=30)
        ax.tick_params(axis="y", rotation=0)
    _save(fig, path)
