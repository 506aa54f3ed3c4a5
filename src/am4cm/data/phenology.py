"""Land-cover phenology for the synthetic PASTIS: per-field endmember fractions over time.

Every field (a crop parcel or a patch of background) is a linear mixture of a few
endmember spectra. A cover type turns the acquisition days into the fraction of each
endmember per date: a green canopy that rises after sowing and falls at senescence, dry
standing matter until harvest, stubble, bare soil, yellow flowers, and for background
covers forest canopy, roofs and roads, or water. Each field draws its own calendar shift,
vigour and cutting dates, so parcels of a class differ and similar classes overlap.
Days are counted from ``facts.REFERENCE_DATE`` (2018-09-01).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

ENDMEMBERS: dict[str, tuple[float, ...]] = {
    # Surface reflectance (0-1) in the band order of facts.BANDS: B2 B3 B4 B5 B6 B7 B8 B8A B11 B12.
    "green_grass": (0.025, 0.060, 0.026, 0.105, 0.290, 0.370, 0.420, 0.440, 0.215, 0.100),
    "green_broadleaf": (0.024, 0.065, 0.025, 0.110, 0.330, 0.440, 0.490, 0.505, 0.225, 0.095),
    "dry": (0.070, 0.100, 0.140, 0.175, 0.205, 0.225, 0.240, 0.255, 0.340, 0.270),
    "flower": (0.045, 0.160, 0.150, 0.220, 0.320, 0.360, 0.380, 0.400, 0.240, 0.130),
    "soil": (0.080, 0.110, 0.150, 0.180, 0.200, 0.210, 0.220, 0.235, 0.300, 0.260),
    "water": (0.050, 0.055, 0.035, 0.025, 0.015, 0.012, 0.010, 0.009, 0.004, 0.002),
    "urban": (0.100, 0.110, 0.120, 0.140, 0.160, 0.170, 0.180, 0.190, 0.220, 0.200),
    "conifer": (0.018, 0.035, 0.020, 0.065, 0.170, 0.210, 0.230, 0.240, 0.100, 0.045),
}
ENDMEMBER_NAMES: tuple[str, ...] = tuple(ENDMEMBERS)
GREEN, BROADLEAF, DRY, FLOWER, SOIL, WATER, URBAN, CONIFER = range(len(ENDMEMBER_NAMES))


@dataclass(frozen=True)
class CropCalendar:
    """Mean calendar of an annual crop, in days since 2018-09-01 (field shifts are added)."""

    green_up: float
    senescence: float
    harvest: float
    peak: float
    emergence: float | None = None
    winter_share: float = 0.0
    up_width: float = 10.0
    down_width: float = 9.0
    flowering: tuple[float, float, float] | None = None
    broadleaf: bool = False


ANNUAL_CROPS: dict[int, CropCalendar] = {
    2: CropCalendar(205, 285, 318, 0.92, emergence=60, winter_share=0.40),  # soft winter wheat
    3: CropCalendar(290, 372, 395, 0.90, up_width=9, down_width=10),  # corn
    4: CropCalendar(195, 270, 300, 0.90, emergence=55, winter_share=0.45, down_width=8),  # barley
    5: CropCalendar(  # winter rapeseed: autumn rosette, yellow bloom in April
        190,
        285,
        305,
        0.92,
        emergence=15,
        winter_share=0.70,
        flowering=(228.0, 10.0, 0.55),
        broadleaf=True,
    ),
    6: CropCalendar(225, 290, 312, 0.85, up_width=9),  # spring barley
    7: CropCalendar(  # sunflower: yellow heads in mid-July, early browning
        275, 345, 380, 0.75, down_width=8, flowering=(318.0, 8.0, 0.35), broadleaf=True
    ),
    9: CropCalendar(255, 405, 420, 0.90, down_width=15, broadleaf=True),  # beet
    10: CropCalendar(208, 290, 322, 0.95, emergence=58, winter_share=0.45),  # winter triticale
    11: CropCalendar(200, 280, 312, 0.85, emergence=62, winter_share=0.35),  # winter durum wheat
    13: CropCalendar(265, 330, 355, 0.85, up_width=8, down_width=8, broadleaf=True),  # potatoes
    15: CropCalendar(295, 360, 385, 0.90, broadleaf=True),  # soybeans
    17: CropCalendar(206, 288, 320, 0.85, emergence=60, winter_share=0.40),  # mixed cereal
    18: CropCalendar(300, 370, 395, 0.80),  # sorghum
}


def _rise(days: np.ndarray, centre: np.ndarray | float, width: float) -> np.ndarray:
    """Logistic step from 0 to 1 at ``centre`` (fields on axis 0, dates on axis 1)."""
    return 1.0 / (1.0 + np.exp(-(days[None, :] - np.reshape(centre, (-1, 1))) / width))


def _bump(days: np.ndarray, centre: np.ndarray | float, width: float) -> np.ndarray:
    """Gaussian bump of height 1 at ``centre``."""
    return np.exp(-0.5 * ((days[None, :] - np.reshape(centre, (-1, 1))) / width) ** 2)


def _column(values: np.ndarray) -> np.ndarray:
    return values[:, None]


def _empty(n_fields: int, days: np.ndarray) -> np.ndarray:
    return np.zeros((n_fields, days.size, len(ENDMEMBER_NAMES)), dtype=np.float64)


def _with_soil(fractions: np.ndarray) -> np.ndarray:
    """Scale covers to sum at most 1 and give the rest to bare soil."""
    cover = fractions.sum(axis=2, keepdims=True)
    fractions = fractions / np.maximum(cover, 1.0)
    fractions[..., SOIL] += 1.0 - fractions.sum(axis=2)
    return fractions


def _off_season(days: np.ndarray, n: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Green and dry cover outside the crop's own season: last year's crop, cover crops, next crop.

    Returns green before sowing, dry residue before sowing, and green of the next crop.
    """
    standing = rng.random(n) < 0.3
    previous_harvest = rng.uniform(15, 60, n)
    previous = (1 - _rise(days, previous_harvest, 4)) * _column(standing)
    green = previous * _column(rng.uniform(0.05, 0.4, n))
    dry = previous * _column(rng.uniform(0.3, 0.6, n))
    stubble_until = previous_harvest + rng.uniform(10, 120, n)
    dry += (_rise(days, previous_harvest, 4) - _rise(days, stubble_until, 5)).clip(0) * _column(
        rng.uniform(0.05, 0.3, n)
    )
    cover_crop = rng.random(n) < 0.3
    green += (
        (_rise(days, rng.uniform(40, 70, n), 8) - _rise(days, rng.uniform(190, 230, n), 5))
        * _column(rng.uniform(0.2, 0.45, n) * cover_crop)
    ).clip(0)
    next_crop = _rise(days, rng.uniform(375, 430, n), 8) * _column(
        rng.uniform(0.1, 0.4, n) * (rng.random(n) < 0.4)
    )
    return green, dry, next_crop


def annual_crop(
    calendar: CropCalendar, days: np.ndarray, n: int, rng: np.random.Generator
) -> np.ndarray:
    """Endmember fractions (n, T, E) of ``n`` fields of an annual crop."""
    shift = rng.normal(0, 11, n)
    peak = calendar.peak * rng.uniform(0.85, 1.08, n)
    harvest = calendar.harvest + shift + rng.normal(0, 5, n)
    senescence = np.minimum(calendar.senescence + shift, harvest - 6)
    season = _rise(days, calendar.green_up + shift, calendar.up_width)
    if calendar.emergence is not None:
        autumn = _rise(days, calendar.emergence + rng.normal(0, 10, n), 10)
        share = calendar.winter_share * rng.uniform(0.7, 1.2, n)
        season = _column(share) * autumn + _column(1 - share) * season
    ends = _rise(days, senescence, calendar.down_width)
    cut = _rise(days, harvest, 3)
    green_before, dry_before, next_crop = _off_season(days, n, rng)
    sown = _rise(days, calendar.green_up + shift - 40, 6)
    if calendar.emergence is not None:
        sown = _rise(days, calendar.emergence - 25 + shift, 6)
    fractions = _empty(n, days)
    canopy = _column(peak) * (season - ends).clip(0)
    if calendar.flowering is not None:
        centre, width, amount = calendar.flowering
        flowers = _bump(days, centre + shift, width) * _column(amount * rng.uniform(0.7, 1.1, n))
        fractions[..., FLOWER] = flowers * (season - ends).clip(0)
        canopy -= 0.6 * fractions[..., FLOWER]
    fractions[..., BROADLEAF if calendar.broadleaf else GREEN] += canopy.clip(0)
    fractions[..., GREEN] += (1 - sown) * green_before + cut * next_crop
    stubble = cut * (1 - _rise(days, harvest + rng.uniform(15, 80, n), 5))
    fractions[..., DRY] = (
        _column(peak * 0.9) * (ends - cut).clip(0)
        + stubble * _column(rng.uniform(0.1, 0.35, n))
        + (1 - sown) * dry_before
    )
    return _with_soil(fractions)


def grassland(
    days: np.ndarray,
    n: int,
    rng: np.random.Generator,
    cuts: tuple[int, int],
    winter: tuple[float, float],
    drought: tuple[float, float],
) -> np.ndarray:
    """Meadow, fodder or fallow: green all year, spring flush, mowing dips, summer drying."""
    green = np.repeat(_column(rng.uniform(*winter, n)), days.size, axis=1)
    green += _bump(days, rng.normal(255, 12, n), 35) * _column(rng.uniform(0.15, 0.35, n))
    dryness = _bump(days, rng.normal(340, 10, n), 25) * _column(rng.uniform(*drought, n))
    n_cuts = rng.integers(cuts[0], cuts[1] + 1, n)
    first_cut = rng.normal(262, 10, n)
    interval = rng.uniform(35, 55, n)
    for k in range(int(n_cuts.max(initial=0))):
        cut_day = first_cut + k * interval
        after = np.maximum(days[None, :] - _column(cut_day), 0.0)
        regrowth = np.where(days[None, :] >= _column(cut_day), np.exp(-after / 22.0), 0.0)
        green *= 1 - regrowth * _column(rng.uniform(0.45, 0.7, n) * (k < n_cuts))
    fractions = _empty(n, days)
    fractions[..., GREEN] = (green - dryness).clip(0.05)
    fractions[..., DRY] = 0.06 + dryness + 0.2 * (1 - green).clip(0)
    return _with_soil(fractions)


def woody(
    days: np.ndarray,
    n: int,
    rng: np.random.Generator,
    canopy: tuple[float, float],
    understorey: tuple[float, float],
    wood: float,
    leaf_on: float,
    leaf_fall: float,
    broadleaf: bool = True,
) -> np.ndarray:
    """Deciduous woody cover (vines, orchards, forest, hedges): leaves from spring to autumn."""
    shift = rng.normal(0, 6, n)
    fall = leaf_fall + shift
    leaves = (1 - _rise(days, fall, 8)) + (
        _rise(days, leaf_on + shift, 9) - _rise(days, fall + 365, 8)
    ).clip(0)
    fractions = _empty(n, days)
    crown = _column(rng.uniform(*canopy, n))
    fractions[..., BROADLEAF if broadleaf else GREEN] = crown * leaves
    fractions[..., GREEN] += _column(rng.uniform(*understorey, n))
    fractions[..., DRY] = crown * (1 - leaves) * wood + _bump(days, fall, 12) * crown * 0.3
    return _with_soil(fractions)


def fruits_vegetables(days: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Market gardening: one to three short, randomly timed crop cycles."""
    fractions = _empty(n, days)
    for _ in range(3):
        active = rng.random(n) < 0.6
        start = rng.uniform(170, 350, n)
        length = rng.uniform(50, 95, n)
        cycle = (_rise(days, start, 7) - _rise(days, start + length, 5)).clip(0)
        fractions[..., BROADLEAF] += cycle * _column(rng.uniform(0.45, 0.85, n) * active)
    fractions[..., DRY] = 0.05
    return _with_soil(fractions)


def constant_cover(
    days: np.ndarray, n: int, rng: np.random.Generator, cover: dict[int, tuple[float, float]]
) -> np.ndarray:
    """Covers without a season (conifers, roofs, water): fixed fractions, summer greening."""
    fractions = _empty(n, days)
    for endmember, (low, high) in cover.items():
        fractions[..., endmember] = _column(rng.uniform(low, high, n))
    summer = _bump(days, 320, 60)
    fractions[..., GREEN] *= 0.7 + 0.6 * summer
    return _with_soil(fractions)


CoverModel = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]


def _annual(class_id: int) -> CoverModel:
    return lambda days, n, rng: annual_crop(ANNUAL_CROPS[class_id], days, n, rng)


COVER_MODELS: dict[int | str, CoverModel] = {
    1: lambda d, n, r: grassland(d, n, r, cuts=(0, 3), winter=(0.55, 0.75), drought=(0, 0.3)),
    **{class_id: _annual(class_id) for class_id in ANNUAL_CROPS},
    8: lambda d, n, r: woody(d, n, r, (0.3, 0.5), (0.0, 0.25), 0.25, 228, 55),  # grapevine
    12: fruits_vegetables,
    14: lambda d, n, r: grassland(d, n, r, cuts=(3, 4), winter=(0.3, 0.45), drought=(0, 0.1)),
    16: lambda d, n, r: woody(d, n, r, (0.45, 0.65), (0.2, 0.4), 0.3, 212, 68),  # orchard
    "deciduous_forest": lambda d, n, r: woody(d, n, r, (0.75, 0.9), (0.05, 0.15), 0.55, 222, 65),
    "hedge": lambda d, n, r: woody(d, n, r, (0.6, 0.85), (0.1, 0.25), 0.5, 218, 62),
    "conifer_forest": lambda d, n, r: constant_cover(
        d, n, r, {CONIFER: (0.75, 0.95), GREEN: (0.0, 0.1)}
    ),
    "urban": lambda d, n, r: constant_cover(
        d, n, r, {URBAN: (0.5, 0.85), GREEN: (0.05, 0.25), DRY: (0.0, 0.1)}
    ),
    "water": lambda d, n, r: constant_cover(d, n, r, {WATER: (0.9, 1.0), GREEN: (0.0, 0.05)}),
    "fallow": lambda d, n, r: grassland(
        d, n, r, cuts=(0, 1), winter=(0.35, 0.55), drought=(0.1, 0.4)
    ),
}
"""Endmember fractions (n, T, E) of ``n`` fields of each cover: a crop class id (1-18) or the
name of a background cover."""

COVER_BRIGHTNESS: dict[str, float] = {"deciduous_forest": 0.8, "conifer_forest": 0.85, "hedge": 0.8}
"""Canopy shading: woods reflect less than their endmembers suggest."""


def cover_fractions(
    cover: int | str, days: np.ndarray, n_fields: int, rng: np.random.Generator
) -> np.ndarray:
    """Endmember fractions (n_fields, T, E), float32, of fields of one cover on the given days."""
    fractions = COVER_MODELS[cover](days.astype(np.float64), n_fields, rng)
    fractions[fractions < 1e-6] = 0.0  # no float32 subnormals: they make mixing 100x slower
    return (fractions * COVER_BRIGHTNESS.get(cover, 1.0)).astype(np.float32)
