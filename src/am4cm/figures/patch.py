"""Overview figure of one synthetic patch: images, classes, cloud truth and NDVI curves.

Drawn on its own :class:`matplotlib.figure.Figure` with an Agg canvas (no pyplot state) and
written atomically.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import matplotlib.dates as mdates
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from am4cm.data import facts
from am4cm.figures.evaluation import rgb_composite
from am4cm.io import atomic_path

CLOUD_TRUTH_COLOURS = {
    "clear": (0.85, 0.85, 0.85),
    "cloud": (0.1, 0.3, 0.9),
    "thin_cloud": (0.55, 0.85, 1.0),
    "shadow": (0.35, 0.1, 0.45),
}
CLOUD_TRUTH_LABELS = {"clear": "clear", "cloud": "thick cloud", "thin_cloud": "thin cloud"}
RED, NIR = facts.BANDS.index("B4"), facts.BANDS.index("B8")


def ndvi(s2: np.ndarray) -> np.ndarray:
    """NDVI (T, H, W) of a (T, 10, H, W) reflectance stack."""
    red, nir = s2[:, RED].astype(np.float64), s2[:, NIR].astype(np.float64)
    return (nir - red) / np.maximum(nir + red, 1.0)


def showcase_dates(s2: np.ndarray, clouds: np.ndarray | None) -> dict[str, int]:
    """Index of a clear, a thin-cloud and a thick-cloud date (by cloud truth, else by blue)."""
    if clouds is None:
        blue = np.median(s2[:, 0].reshape(len(s2), -1), axis=1)
        order = np.argsort(blue)
        return {
            "clear": int(order[0]),
            "thin cloud": int(order[len(order) // 2]),
            "thick cloud": int(order[-1]),
        }
    shares = {
        code: (clouds == value).mean(axis=(1, 2)) for code, value in facts.CLOUD_TRUTH_CODES.items()
    }
    clear = int(np.argmax(shares["clear"]))
    thin = int(np.argmax(shares["thin_cloud"]))
    mixed = shares["cloud"] * (1 - shares["cloud"]) + 0.1 * shares["cloud"]
    return {"clear": clear, "thin cloud": thin, "thick cloud": int(np.argmax(mixed))}


def main_classes(labels: np.ndarray, count: int = 6) -> list[int]:
    """The ``count`` most frequent classes of a class map, void excluded."""
    classes, pixels = np.unique(labels[labels != facts.VOID_CLASS], return_counts=True)
    return [int(k) for k in classes[np.argsort(-pixels)][:count]]


def plot_synthetic_patch(
    s2: np.ndarray,
    labels: np.ndarray,
    clouds: np.ndarray | None,
    dates: list[dt.date],
    path: Path,
    title: str,
) -> None:
    """Save a PNG overview of one patch.

    ``s2`` is (T, 10, H, W) reflectance x 10000, ``labels`` the (H, W) class map, ``clouds``
    the (T, H, W) cloud truth (or None: dates are then chosen by blue brightness and NDVI is
    averaged over all pixels).
    """
    picked = showcase_dates(s2, clouds)
    figure = Figure(figsize=(17, 8.5), layout="constrained")
    FigureCanvasAgg(figure)
    grid = figure.add_gridspec(2, 5, width_ratios=[1, 1, 1, 1, 0.75])
    for column, (name, index) in enumerate(picked.items()):
        axis = figure.add_subplot(grid[0, column])
        axis.imshow(rgb_composite(s2[index], 1.0, 99.5), interpolation="nearest")
        axis.set_title(f"{name}: {dates[index]:%Y-%m-%d}")
        axis.set_axis_off()

    names, colours = facts.class_names(), facts.class_colours()
    class_axis = figure.add_subplot(grid[0, 3])
    class_axis.imshow(colours[labels], interpolation="nearest")
    class_axis.set_title("classes (TARGET channel 0)")
    class_axis.set_axis_off()
    present = [int(k) for k in np.unique(labels)]
    legend_axis = figure.add_subplot(grid[0, 4])
    legend_axis.set_axis_off()
    legend_axis.legend(
        handles=[
            Patch(facecolor=colours[k], edgecolor="0.4", label=f"{k} {names[k]}") for k in present
        ],
        loc="center left",
        fontsize=8,
        frameon=False,
    )

    codes = facts.CLOUD_TRUTH_CODES
    truth_cmap = ListedColormap([CLOUD_TRUTH_COLOURS[name] for name in codes])
    for column, name in enumerate(("thick cloud", "thin cloud")):
        axis = figure.add_subplot(grid[1, column])
        axis.set_axis_off()
        index = picked[name]
        axis.set_title(f"cloud truth {dates[index]:%Y-%m-%d}")
        if clouds is None:
            axis.text(0.5, 0.5, "no cloud truth\n(real PASTIS)", ha="center", va="center")
            continue
        axis.imshow(
            clouds[index],
            cmap=truth_cmap,
            vmin=-0.5,
            vmax=len(codes) - 0.5,
            interpolation="nearest",
        )
    figure.legend(
        handles=[
            Patch(
                facecolor=CLOUD_TRUTH_COLOURS[name],
                edgecolor="0.4",
                label=CLOUD_TRUTH_LABELS.get(name, name),
            )
            for name in codes
        ],
        loc="lower left",
        ncols=4,
        fontsize=9,
        frameon=False,
    )

    curve_axis = figure.add_subplot(grid[1, 2:])
    index_map = ndvi(s2)
    usable = np.ones(index_map.shape, dtype=bool) if clouds is None else clouds == codes["clear"]
    for class_id in main_classes(labels):
        pixels = (labels == class_id)[None] & usable
        counts = pixels.sum(axis=(1, 2))
        mean = np.where(pixels, index_map, 0).sum(axis=(1, 2)) / np.maximum(counts, 1)
        seen = counts >= 10
        curve_axis.plot(
            np.array(dates)[seen],
            mean[seen],
            marker="o",
            markersize=3,
            color=colours[class_id] * 0.85,
            label=names[class_id],
        )
    curve_axis.set_ylabel("mean NDVI" + (" of clear pixels" if clouds is not None else ""))
    curve_axis.set_ylim(-0.1, 1.0)
    curve_axis.xaxis.set_major_formatter(mdates.DateFormatter("%b %y"))
    curve_axis.grid(alpha=0.3)
    curve_axis.legend(fontsize=8, ncols=2)
    curve_axis.set_title("NDVI per main class over the acquisition dates")
    figure.suptitle(title)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=110, format="png")
