"""Facts about the PASTIS release that the whole package shares (one place for each).

The tables live in ``am4cm/data/resources`` as copies of the checked format notes, so
nothing outside the package is read at run time.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
from functools import cache
from importlib import resources

import numpy as np

BANDS: tuple[str, ...] = ("B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B11", "B12")
"""Sentinel-2 bands of ``DATA_S2`` arrays, in channel order."""
N_BANDS = len(BANDS)
RGB_CHANNELS: tuple[int, int, int] = (2, 1, 0)
"""Channels of B4, B3, B2 for a true-colour display."""
REFLECTANCE_SCALE = 10000.0
"""``DATA_S2`` holds surface reflectance times this factor, as int16."""

N_CLASSES = 20
VOID_CLASS = 19
"""Parcels mostly outside the patch: ignored by the loss and by every metric."""
SCORED_CLASSES = tuple(range(VOID_CLASS))
"""Classes 0-18 (background included) over which OA and mIoU are computed."""

PATCH_SIZE = 128
FOLDS: tuple[int, ...] = (1, 2, 3, 4, 5)
TILES: tuple[str, ...] = ("t30uxv", "t31tfj", "t31tfm", "t32ulu")
REFERENCE_DATE = dt.date(2018, 9, 1)
"""Day offsets of acquisition dates are counted from this date, as in the official loader."""
EPSG = 2154
CRS = f"EPSG:{EPSG}"
"""Lambert-93, the CRS of ``metadata.geojson``."""

FOLD_PROTOCOL: dict[int, dict[str, tuple[int, ...]]] = {
    run: {
        "train": tuple((run - 1 + k) % 5 + 1 for k in range(3)),
        "val": ((run + 2) % 5 + 1,),
        "test": ((run + 3) % 5 + 1,),
    }
    for run in range(1, 6)
}
"""The official 5-run protocol: run 1 trains on folds 1-3, validates on 4, tests on 5."""


def _resource(name: str):
    return resources.files("am4cm.data").joinpath("resources", name)


@cache
def class_table() -> tuple[tuple[str, tuple[float, float, float]], ...]:
    """Official class names and display colours (RGB in 0-1), indexed by class id."""
    with _resource("classes.csv").open() as handle:
        rows = sorted(csv.DictReader(handle), key=lambda row: int(row["class_id"]))
    return tuple((row["name"], (float(row["r"]), float(row["g"]), float(row["b"]))) for row in rows)


def class_names() -> list[str]:
    """The 20 PASTIS class names, indexed by class id."""
    return [name for name, _ in class_table()]


def class_colours() -> np.ndarray:
    """The official PASTIS colours, (20, 3) float in 0-1, indexed by class id."""
    return np.array([colour for _, colour in class_table()], dtype=float)


@cache
def tile_calendars() -> dict[str, tuple[dt.date, ...]]:
    """The real Sentinel-2 acquisition dates of each PASTIS tile."""
    with _resource("tile_dates_S2.json").open() as handle:
        raw = json.load(handle)
    return {tile: tuple(parse_yyyymmdd(value) for value in dates) for tile, dates in raw.items()}


@cache
def real_fold_map() -> tuple[tuple[int, int, str, int], ...]:
    """``(ID_PATCH, Fold, TILE, T)`` of all 2433 real PASTIS patches."""
    with _resource("folds.csv").open() as handle:
        return tuple(
            (int(row["ID_PATCH"]), int(row["Fold"]), row["TILE"], int(row["T"]))
            for row in csv.DictReader(handle)
        )


@cache
def real_class_shares() -> dict[int, float]:
    """Real class pixel shares (0-1) over 102 patches of tile t31tfm."""
    with _resource("class_pixels_t31tfm_subset.csv").open() as handle:
        return {int(row["class_id"]): float(row["pct"]) / 100 for row in csv.DictReader(handle)}


@cache
def official_norm_stats() -> dict[str, dict[str, list[float]]]:
    """The released ``NORM_S2_patch.json``: per-fold band mean and std."""
    with _resource("NORM_S2_patch.json").open() as handle:
        return json.load(handle)


def parse_yyyymmdd(value: int | str) -> dt.date:
    """Turn a PASTIS date such as ``20180924`` (int or str) into a calendar date."""
    text = str(int(value))
    if len(text) != 8:
        raise ValueError(f"not a YYYYMMDD date: {value!r}")
    return dt.date(int(text[:4]), int(text[4:6]), int(text[6:]))


def day_offsets(dates: list[dt.date] | tuple[dt.date, ...]) -> np.ndarray:
    """Days since 2018-09-01 of each date, int32, as the official loader computes them."""
    return np.array([(date - REFERENCE_DATE).days for date in dates], dtype=np.int32)


CLOUD_TRUTH_DIR = "CLOUDS"
"""Synthetic-only extension: ``CLOUDS/CLOUD_{ID}.npy``, uint8 (T, H, W). Real PASTIS has none."""
CLOUD_TRUTH_CODES: dict[str, int] = {"clear": 0, "cloud": 1, "thin_cloud": 2, "shadow": 3}
"""Codes of the synthetic cloud truth: 0 clear, 1 thick cloud, 2 thin cloud, 3 cloud shadow."""
