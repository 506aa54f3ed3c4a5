"""A synthetic PASTIS in the exact layout of the real release, with known cloud truth.

Real PASTIS (38 GB) cannot be fetched, so the workflow's default dataset is generated:
real patch IDs, folds, tiles and acquisition calendars; fields of realistic size and shape
with class shares close to the real ones; class-specific phenology mixed from endmember
spectra into 10-band surface reflectance; and clouds, thin clouds, haze and cloud shadows
rendered on top. Files are those of real PASTIS plus ``CLOUDS/CLOUD_{ID}.npy``, the cloud
truth that real PASTIS lacks. ``TARGET_{ID}.npy`` repeats the class map in its three
channels; the study reads channel 0 only.

Each patch comes from its own random generator seeded by ``(seed, patch id)``; the weather
of a date is shared by the patches of a tile (one generator per ``(seed, tile)``), so a
patch does not depend on which other patches are generated, nor on their order.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.ndimage import gaussian_filter
from scipy.spatial import cKDTree
from scipy.special import ndtr
from tqdm import tqdm

from am4cm.data import facts, phenology

CLOUD, THIN_CLOUD, SHADOW = (facts.CLOUD_TRUTH_CODES[k] for k in ("cloud", "thin_cloud", "shadow"))
THICK_OPACITY = 0.6
"""Cloud opacity from which a pixel counts as thick cloud (opaque, surface hidden)."""
THIN_OPACITY = 0.1
"""Cloud opacity from which a pixel counts as thin cloud (surface seen through it)."""
SHADOW_STRENGTH = 0.25
"""Shadow strength (share of direct light blocked) from which a pixel counts as shadow."""

TILE_BOXES: dict[str, tuple[float, float, float, float]] = {
    # Lambert-93 range (x_min, x_max, y_min, y_max) of patch corners in each S2 tile.
    "t30uxv": (360_000, 455_000, 6_865_000, 6_955_000),
    "t31tfj": (805_000, 900_000, 6_265_000, 6_355_000),
    "t31tfm": (800_000, 895_000, 6_550_000, 6_640_000),
    "t32ulu": (945_000, 1_040_000, 6_750_000, 6_840_000),
}
TILE_ROTATION_DEG: dict[str, float] = {
    "t30uxv": -4.42,
    "t31tfj": 0.06,
    "t31tfm": 0.0,
    "t32ulu": 4.40,
}
"""Angle of the UTM pixel grid in Lambert-93 (meridian convergence difference) per tile."""

TILE_CLASS_WEIGHTS: dict[str, dict[int, float]] = {
    "t30uxv": {1: 1.6, 3: 1.4, 15: 0.2, 7: 0.3, 14: 1.5},  # bocage: meadows, corn, fodder
    "t31tfj": {8: 12, 16: 12, 12: 4, 11: 6, 7: 3, 18: 3, 1: 0.6},  # Rhone valley: vines, orchards
    "t31tfm": {},  # the reference shares come from this tile
    "t32ulu": {3: 1.5, 9: 4, 13: 3, 8: 3, 15: 0.4},  # Alsace: corn, beet, potatoes
}
RARE_CLASS_FLOOR = 0.008
"""Least share of each crop among parcels, so that every class occurs in a small dataset."""
BACKGROUND_LAND_USE: dict[str, float] = {
    "deciduous_forest": 0.3,
    "conifer_forest": 0.08,
    "urban": 0.22,
    "water": 0.05,
    "fallow": 0.2,
    "farmland": 0.15,
}
"""Shares of land uses among background areas (hedges apart). ``farmland`` is undeclared
farmland: it looks like a crop but is labelled background, as in the real annotations."""
MISDECLARED_SHARE = 0.03
"""Share of parcels whose declared class (the label) is not the crop grown on them."""

# Spectral shapes in the band order of facts.BANDS, relative to blue.
THICK_CLOUD_SPECTRUM = np.array([1.0, 0.97, 0.95, 0.95, 0.94, 0.93, 0.93, 0.92, 0.72, 0.52])
"""Water clouds: nearly white, darker in the SWIR where water absorbs."""
THIN_CLOUD_SPECTRUM = np.array([1.0, 0.95, 0.92, 0.90, 0.88, 0.87, 0.86, 0.85, 0.60, 0.40])
"""High ice clouds: slightly bluer, darker in the SWIR."""
HAZE_SPECTRUM = np.array([1.0, 0.75, 0.55, 0.45, 0.35, 0.30, 0.25, 0.23, 0.08, 0.04])
"""Aerosol haze: additive path radiance, strongest in blue."""
SHADOW_TRANSMISSION = np.array([0.50, 0.45, 0.40, 0.38, 0.33, 0.30, 0.28, 0.28, 0.25, 0.25])
"""Share of reflectance left under a full shadow: diffuse sky light is bluer than sunlight."""
SHADOW_OFFSET = np.array([0.02, 0.01, 0.006, 0.004, 0.003, 0.003, 0.003, 0.003, 0.004, 0.004])
"""Over-correction of shadowed pixels by the atmospheric correction (drives dark pixels < 0)."""
INT16_RANGE = (np.iinfo(np.int16).min, np.iinfo(np.int16).max)
BANDS_20M = [facts.BANDS.index(band) for band in ("B5", "B6", "B7", "B8A", "B11", "B12")]
"""Channels sensed at 20 m and bilinearly upsampled to 10 m in PASTIS."""

CLEAR, PARTIAL, OVERCAST = 0, 1, 2


@dataclass(frozen=True)
class SyntheticConfig:
    """Size and seed of a synthetic PASTIS."""

    seed: int = 0
    patches_per_fold: int = 4
    patch_size: int = 128

    def __post_init__(self) -> None:
        smallest_fold = min(
            sum(fold == k for _, fold, _, _ in facts.real_fold_map()) for k in facts.FOLDS
        )
        if not 1 <= self.patches_per_fold <= smallest_fold:
            raise ValueError(f"patches_per_fold must be in 1..{smallest_fold}")
        if self.patch_size < 16:
            raise ValueError("patch_size must be at least 16 pixels")
        if self.seed < 0:
            raise ValueError("seed must be non-negative")


@dataclass(frozen=True)
class PatchSpec:
    """Identity of a real PASTIS patch that a synthetic patch stands in for."""

    patch_id: int
    fold: int
    tile: str


@dataclass(frozen=True)
class Layout:
    """Fields of a patch: which field each pixel shows, and what the annotations say."""

    field_map: np.ndarray
    """(H, W) index into ``field_covers``."""
    field_covers: tuple[int | str, ...]
    """Cover of each field: a crop class (1-18) or a background cover name."""
    semantic: np.ndarray
    """(H, W) uint8 class map, 0 background .. 19 void."""
    parcel_ids: np.ndarray
    """(H, W) int32, 0 outside parcels."""


@dataclass(frozen=True)
class Sky:
    """Per-date cloud layers over a patch, (T, H, W) each unless noted."""

    cumulus: np.ndarray
    """Opacity (0-1) of the low, thick cloud layer."""
    cirrus: np.ndarray
    """Opacity (0-1) of the high, semi-transparent layer."""
    shadow: np.ndarray
    """Strength (0-1) of the shadow cast by the low layer."""
    haze: np.ndarray
    """Additive haze reflectance in blue."""
    core: np.ndarray
    """Optical depth proxy (0-1) of the low layer: thicker cores are brighter."""
    cumulus_brightness: np.ndarray
    """(T,) reflectance of an opaque cloud in blue."""
    cirrus_brightness: np.ndarray
    """(T,) reflectance of the high layer in blue."""


@dataclass(frozen=True)
class SyntheticPatch:
    """The arrays of one patch, as written to disk."""

    s2: np.ndarray
    target: np.ndarray
    parcel_ids: np.ndarray
    clouds: np.ndarray


def choose_patches(seed: int, patches_per_fold: int) -> list[PatchSpec]:
    """Real patch IDs for each fold, spread over the four tiles, sorted by ID."""
    rng = np.random.default_rng(seed)
    tile_order = [str(tile) for tile in rng.permutation(facts.TILES)]
    chosen: list[PatchSpec] = []
    for fold in facts.FOLDS:
        candidates = {
            tile: [pid for pid, f, t, _ in facts.real_fold_map() if f == fold and t == tile]
            for tile in facts.TILES
        }
        for tile in candidates:
            candidates[tile] = list(rng.permutation(candidates[tile]))
        turn = fold - 1
        while sum(spec.fold == fold for spec in chosen) < patches_per_fold:
            tile = tile_order[turn % len(tile_order)]
            turn += 1
            if candidates[tile]:
                chosen.append(PatchSpec(int(candidates[tile].pop()), fold, tile))
    return sorted(chosen, key=lambda spec: spec.patch_id)


def class_probabilities(tile: str, rng: np.random.Generator) -> np.ndarray:
    """Probability of each crop class 1-18 for the parcels of one patch (index 0 = class 1)."""
    shares = facts.real_class_shares()
    base = np.array([shares.get(k, 0.0) for k in range(1, facts.VOID_CLASS)])
    base = np.maximum(base / base.sum(), RARE_CLASS_FLOOR)
    for class_id, weight in TILE_CLASS_WEIGHTS[tile].items():
        base[class_id - 1] *= weight
    return rng.dirichlet(100 * base / base.sum())


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, ...], sigma: float) -> np.ndarray:
    """Gaussian-smoothed white noise, scaled to unit standard deviation."""
    field = gaussian_filter(rng.standard_normal(shape), sigma, mode="wrap")
    return field / max(float(field.std()), 1e-9)


def _boundary(cells: np.ndarray) -> np.ndarray:
    """Pixels with a 4-neighbour in another cell (image edges excluded)."""
    edge = np.zeros(cells.shape, dtype=bool)
    vertical = cells[1:, :] != cells[:-1, :]
    horizontal = cells[:, 1:] != cells[:, :-1]
    edge[1:, :] |= vertical
    edge[:-1, :] |= vertical
    edge[:, 1:] |= horizontal
    edge[:, :-1] |= horizontal
    return edge


def _voronoi_cells(rng: np.random.Generator, canvas: int, mean_area: float) -> np.ndarray:
    """Irregular, elongated Voronoi cells of about ``mean_area`` pixels on a square canvas."""
    spacing = np.sqrt(mean_area * 0.85)
    angle = rng.uniform(0, np.pi)
    stretch = np.sqrt(rng.uniform(1.0, 2.2))
    rows, cols = np.mgrid[0:canvas, 0:canvas].astype(np.float64)
    rows += 0.3 * spacing * _smooth_noise(rng, (canvas, canvas), 2 * spacing)
    cols += 0.3 * spacing * _smooth_noise(rng, (canvas, canvas), 2 * spacing)
    u = (rows * np.cos(angle) + cols * np.sin(angle)) * stretch
    v = (cols * np.cos(angle) - rows * np.sin(angle)) / stretch
    points = np.column_stack([u.ravel(), v.ravel()])
    low, high = points.min(axis=0) - spacing, points.max(axis=0) + spacing
    grid = np.stack(
        np.meshgrid(*(np.arange(lo, hi, spacing) for lo, hi in zip(low, high, strict=True))),
        axis=-1,
    ).reshape(-1, 2)
    seeds = grid + rng.uniform(-0.4, 0.4, grid.shape) * spacing
    seeds = seeds[rng.random(len(seeds)) > 0.15]
    _, nearest = cKDTree(seeds).query(points, workers=1)
    return nearest.reshape(canvas, canvas)


def make_layout(rng: np.random.Generator, size: int, tile: str, first_parcel_id: int) -> Layout:
    """Parcels and background areas of one patch, with void parcels and void or hedge edges.

    Parcels cut by the patch border with less than half of their area inside are void (19);
    some parcels have a void ring at their edge, others a hedge (background) around them.
    """
    margin = max(8, size // 4)
    canvas = size + 2 * margin
    mean_area = np.exp(rng.uniform(np.log(90), np.log(330)))
    cells = _voronoi_cells(rng, canvas, mean_area)
    window = (slice(margin, margin + size), slice(margin, margin + size))
    _, cells = np.unique(cells, return_inverse=True)
    cells = cells.reshape(canvas, canvas)
    n_cells = int(cells.max()) + 1
    canvas_area = np.bincount(cells.ravel(), minlength=n_cells)
    window_area = np.bincount(cells[window].ravel(), minlength=n_cells)

    spacing = np.sqrt(mean_area)
    landscape = _smooth_noise(rng, (canvas, canvas), 2.5 * spacing)
    land_use = np.bincount(cells.ravel(), landscape.ravel(), n_cells) / canvas_area
    background_share = rng.uniform(0.1, 0.4)
    by_wildness = np.argsort(-land_use)
    covered = np.cumsum(window_area[by_wildness]) / size**2
    is_background = np.zeros(n_cells, dtype=bool)
    is_background[by_wildness[: int(np.searchsorted(covered, background_share)) + 1]] = True

    cover_noise = _smooth_noise(rng, (canvas, canvas), 3 * spacing)
    cover_rank = ndtr(np.bincount(cells.ravel(), cover_noise.ravel(), n_cells) / canvas_area)
    land_use_names = list(BACKGROUND_LAND_USE)
    background_kind = np.searchsorted(
        np.cumsum(list(BACKGROUND_LAND_USE.values())), cover_rank * 0.999
    )
    crop_share = class_probabilities(tile, rng)
    crop_class = 1 + rng.choice(facts.VOID_CLASS - 1, size=n_cells, p=crop_share)
    other_crop = 1 + rng.choice(facts.VOID_CLASS - 1, size=n_cells, p=crop_share)
    grown = np.where(rng.random(n_cells) < MISDECLARED_SHARE, other_crop, crop_class)
    covers: list[int | str] = [
        int(crop) if not wild else int(other) if use == "farmland" else use
        for wild, use, crop, other in zip(
            is_background, np.array(land_use_names)[background_kind], grown, other_crop, strict=True
        )
    ]

    hedge_share = 0.3 if tile == "t30uxv" else 0.1
    edge_fate = rng.random(n_cells)
    has_hedge = ~is_background & (edge_fate < hedge_share)
    has_void_ring = ~is_background & (edge_fate > 0.7)
    mostly_outside = window_area < 0.5 * canvas_area

    field_map = cells[window]
    edge = _boundary(cells)[window]
    class_map = np.where(is_background, 0, crop_class)[field_map]
    class_map[mostly_outside[field_map] & ~is_background[field_map]] = facts.VOID_CLASS
    class_map[edge & has_void_ring[field_map]] = facts.VOID_CLASS
    in_parcel = ~is_background[field_map]
    hedge = edge & has_hedge[field_map]
    class_map[hedge] = 0
    in_parcel &= ~hedge
    hedge_field = n_cells
    field_map = np.where(hedge, hedge_field, field_map)
    covers.append("hedge")

    visible, compact = np.unique(field_map, return_inverse=True)
    parcel_rank = np.zeros(n_cells + 1, dtype=np.int64)
    parcels_seen = np.unique(field_map[in_parcel])
    parcel_rank[parcels_seen] = first_parcel_id + np.arange(parcels_seen.size)
    return Layout(
        field_map=compact.reshape(size, size).astype(np.int32),
        field_covers=tuple(covers[k] for k in visible),
        semantic=class_map.astype(np.uint8),
        parcel_ids=np.where(in_parcel, parcel_rank[field_map], 0).astype(np.int32),
    )


def winter_weight(days: np.ndarray) -> np.ndarray:
    """1 in mid-January, 0 in mid-July: how wintry (cloudy, wet) a date is."""
    return 0.5 + 0.5 * np.cos(2 * np.pi * (days - 136) / 365.25)


def tile_weather(seed: int, tile: str, days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Regional sky of each date of a tile: regime (clear, partial, overcast) and cloud cover."""
    rng = np.random.default_rng([seed, facts.TILES.index(tile), 1])
    winter = winter_weight(days)
    p_clear = 0.7 - 0.4 * winter
    p_overcast = 0.035 + 0.14 * winter
    draw = rng.random(days.size)
    regime = np.where(draw < p_clear, CLEAR, np.where(draw < 1 - p_overcast, PARTIAL, OVERCAST))
    return regime, rng.beta(0.9, 2.0, days.size)


def _patch_cover(rng: np.random.Generator, regime: np.ndarray, regional: np.ndarray) -> np.ndarray:
    """Cloud cover of each date over one patch, from the regional sky."""
    n = regime.size
    clear = np.where(rng.random(n) < 0.88, 0.0, rng.uniform(0.01, 0.08, n))
    partial = np.clip(regional + rng.normal(0, 0.2, n), 0.02, 0.9)
    overcast = np.where(rng.random(n) < 0.85, rng.uniform(0.93, 1.0, n), rng.uniform(0.5, 0.9, n))
    return np.choose(regime, [clear, partial, overcast])


def fractal_noise(
    rng: np.random.Generator, n_maps: int, size: int, exponent: float, stretch: float = 1.0
) -> np.ndarray:
    """(n_maps, size, size) power-law noise, standardised; ``stretch`` > 1 draws streaks."""
    angle = rng.uniform(0, np.pi)
    fy = np.fft.fftfreq(size)[:, None]
    fx = np.fft.rfftfreq(size)[None, :]
    along = fy * np.cos(angle) + fx * np.sin(angle)
    across = fx * np.cos(angle) - fy * np.sin(angle)
    frequency = np.sqrt((along * stretch) ** 2 + (across / stretch) ** 2 + size**-2.0)
    amplitude = frequency**-exponent
    amplitude[0, 0] = 0.0
    white = rng.standard_normal((n_maps, size, size))
    field = np.fft.irfft2(np.fft.rfft2(white) * amplitude, s=(size, size))
    field -= field.mean(axis=(1, 2), keepdims=True)
    return field / field.std(axis=(1, 2), keepdims=True)


def exceeded_levels(noise: np.ndarray, cover: np.ndarray) -> np.ndarray:
    """(n, 1, 1) level of each noise map that a share ``cover`` of its pixels exceeds."""
    ranked = np.sort(noise.reshape(len(noise), -1), axis=1)
    position = np.rint((1 - cover) * (ranked.shape[1] - 1)).astype(int)
    return np.take_along_axis(ranked, position[:, None], axis=1)[:, :, None]


def smoothstep(ramp: np.ndarray) -> np.ndarray:
    """0 below 0, 1 above 1, a smooth S in between."""
    ramp = np.clip(ramp, 0, 1)
    return ramp * ramp * (3 - 2 * ramp)


def shadow_shift(rng: np.random.Generator, dates: list[dt.date], limit: int) -> np.ndarray:
    """(T, 2) pixel offset (rows, cols) from a cloud to its shadow, from the sun at 10:30."""
    day_of_year = np.array([date.timetuple().tm_yday for date in dates])
    declination = np.radians(-23.44 * np.cos(2 * np.pi * (day_of_year + 10) / 365))
    latitude, hour_angle = np.radians(46.5), np.radians(-22.5)
    cos_zenith = np.sin(latitude) * np.sin(declination) + np.cos(latitude) * np.cos(
        declination
    ) * np.cos(hour_angle)
    tan_zenith = np.sqrt(1 - cos_zenith**2) / cos_zenith
    distance = np.minimum(rng.uniform(400, 1500, len(dates)) * tan_zenith / 10, limit)
    away_from_sun = np.radians(rng.normal(330, 8, len(dates)))
    return np.rint(
        np.column_stack([-np.cos(away_from_sun), np.sin(away_from_sun)]) * distance[:, None]
    ).astype(int)


def make_sky(
    rng: np.random.Generator,
    regime: np.ndarray,
    regional: np.ndarray,
    dates: list[dt.date],
    size: int,
) -> Sky:
    """Cloud, thin-cloud, haze and shadow layers of every date over one patch."""
    n_dates = regime.size
    margin = max(8, size // 2)
    canvas = size + 2 * margin
    inside = (slice(None), slice(margin, margin + size), slice(margin, margin + size))
    cover = _patch_cover(rng, regime, regional)
    has_cirrus = rng.random(n_dates) < np.choose(regime, [0.1, 0.3, 0.0])
    cumulus = np.zeros((n_dates, size, size))
    core = np.zeros((n_dates, size, size))
    shadow = np.zeros((n_dates, size, size))
    cirrus = np.zeros((n_dates, size, size))
    cloudy = np.flatnonzero(cover > 0)
    shift = shadow_shift(rng, dates, margin)
    depth = rng.uniform(0.75, 0.95, n_dates)
    if cloudy.size:
        noise = fractal_noise(rng, cloudy.size, canvas, exponent=1.8)
        levels = exceeded_levels(noise[inside], cover[cloudy])
        opacity = smoothstep((noise - levels) / 0.9)
        core[cloudy] = np.clip((noise[inside] - levels) / 3, 0, 1)
        cumulus[cloudy] = opacity[inside]
        for k, date_index in enumerate(cloudy):
            rows, cols = margin - shift[date_index, 0], margin - shift[date_index, 1]
            cast = opacity[k, rows : rows + size, cols : cols + size]
            shadow[date_index] = np.clip(1.4 * cast, 0, 1) * depth[date_index]
    veiled = np.flatnonzero(has_cirrus)
    if veiled.size:
        streaks = fractal_noise(rng, veiled.size, size, exponent=2.0, stretch=2.5)
        levels = exceeded_levels(streaks, rng.uniform(0.25, 0.9, veiled.size))
        veil = smoothstep((streaks - levels) / 3.0)
        cirrus[veiled] = veil * rng.uniform(0.3, 0.62, veiled.size)[:, None, None]
    haze_level = np.minimum(rng.exponential(0.006 + 0.01 * winter_weight_of(dates)), 0.04)
    haze_level += 0.01 * (regime != CLEAR)
    haze_pattern = 1 + 0.3 * fractal_noise(rng, n_dates, size, exponent=1.8)
    return Sky(
        cumulus=cumulus.astype(np.float32),
        cirrus=cirrus.astype(np.float32),
        shadow=shadow.astype(np.float32),
        haze=(haze_level[:, None, None] * haze_pattern.clip(0.4, 1.6)).astype(np.float32),
        core=core.astype(np.float32),
        cumulus_brightness=rng.uniform(0.5, 1.1, n_dates),
        cirrus_brightness=rng.uniform(0.3, 0.6, n_dates),
    )


def winter_weight_of(dates: list[dt.date]) -> np.ndarray:
    """``winter_weight`` of calendar dates."""
    return winter_weight(facts.day_offsets(dates).astype(np.float64))


def cloud_truth(sky: Sky) -> np.ndarray:
    """(T, H, W) uint8 truth: thick cloud, thin cloud, shadow, clear; cloud wins over shadow."""
    opacity = 1 - (1 - sky.cumulus) * (1 - sky.cirrus)
    truth = np.zeros(opacity.shape, dtype=np.uint8)
    truth[sky.shadow >= SHADOW_STRENGTH] = SHADOW
    truth[opacity >= THIN_OPACITY] = THIN_CLOUD
    truth[opacity >= THICK_OPACITY] = CLOUD
    return truth


def render_surface(rng: np.random.Generator, layout: Layout, days: np.ndarray) -> np.ndarray:
    """Cloud-free surface reflectance (T, 10, H, W), float32, of the fields of a layout."""
    n_fields = len(layout.field_covers)
    fractions = np.empty((n_fields, days.size, len(phenology.ENDMEMBER_NAMES)), np.float32)
    for cover in sorted(set(layout.field_covers), key=str):
        fields = [k for k, c in enumerate(layout.field_covers) if c == cover]
        fractions[fields] = phenology.cover_fractions(cover, days, len(fields), rng)
    wetness = 1 - 0.2 * winter_weight(days) - rng.uniform(0, 0.1, days.size)
    fractions[..., phenology.SOIL] *= rng.uniform(0.75, 1.3, (n_fields, 1)) * wetness
    size = layout.field_map.shape[0]
    vigour = (
        1 + 0.07 * _smooth_noise(rng, (size, size), 2.0) + 0.03 * rng.standard_normal((size, size))
    )
    soil_texture = 1 + 0.06 * _smooth_noise(rng, (size, size), 3.0)
    by_date = np.ascontiguousarray(fractions.transpose(1, 2, 0))
    per_pixel = np.take(by_date, layout.field_map, axis=2)  # (T, E, H, W)
    per_pixel[:, [phenology.GREEN, phenology.BROADLEAF]] *= vigour.astype(np.float32)
    per_pixel[:, phenology.SOIL] *= soil_texture.astype(np.float32)
    spectra = np.array(list(phenology.ENDMEMBERS.values()), dtype=np.float32)
    tint = rng.uniform(-0.12, 0.12) * np.linspace(-1, 1, facts.N_BANDS)
    spectra[phenology.SOIL] *= rng.uniform(0.85, 1.2) * (1 + tint)
    mixed = _mix_neighbours(per_pixel).reshape(days.size, spectra.shape[0], size * size)
    # einsum's own loop, not BLAS: threaded BLAS is slower for this thin product on busy cores.
    surface = np.einsum("eb,tep->tbp", spectra, mixed)
    return surface.reshape(days.size, facts.N_BANDS, size, size)


def _mix_neighbours(image: np.ndarray) -> np.ndarray:
    """Sensor point-spread over the two trailing (row, column) axes: mixed pixels at edges."""
    rows = 0.6 * image
    rows[..., 1:, :] += 0.2 * image[..., :-1, :]
    rows[..., :-1, :] += 0.2 * image[..., 1:, :]
    rows[..., [0, -1], :] += 0.2 * image[..., [0, -1], :]
    mixed = 0.6 * rows
    mixed[..., 1:] += 0.2 * rows[..., :-1]
    mixed[..., :-1] += 0.2 * rows[..., 1:]
    mixed[..., [0, -1]] += 0.2 * rows[..., [0, -1]]
    return mixed


def _upsample_twice(image: np.ndarray, axis: int) -> np.ndarray:
    """Bilinear 2x upsampling along one axis, edges replicated."""
    before = np.concatenate(
        [image.take([0], axis), image.take(range(image.shape[axis] - 1), axis)], axis
    )
    after = np.concatenate(
        [image.take(range(1, image.shape[axis]), axis), image.take([-1], axis)], axis
    )
    even, odd = 0.75 * image + 0.25 * before, 0.75 * image + 0.25 * after
    return np.stack([even, odd], axis=axis + 1).reshape(
        *image.shape[:axis], 2 * image.shape[axis], *image.shape[axis + 1 :]
    )


def resample_20m(image: np.ndarray) -> np.ndarray:
    """Average (…, H, W) over 2x2 blocks and upsample back bilinearly, as for 20 m bands."""
    height, width = image.shape[-2:]
    padded = np.pad(image, [(0, 0)] * (image.ndim - 2) + [(0, height % 2), (0, width % 2)], "edge")
    coarse = padded.reshape(*padded.shape[:-2], padded.shape[-2] // 2, 2, padded.shape[-1] // 2, 2)
    coarse = coarse.mean(axis=(-3, -1))
    fine = _upsample_twice(_upsample_twice(coarse, coarse.ndim - 2), coarse.ndim - 1)
    return fine[..., :height, :width]


def observe(rng: np.random.Generator, surface: np.ndarray, sky: Sky) -> np.ndarray:
    """Reflectance as Sentinel-2 L2A would deliver it, int16 times 10000, (T, 10, H, W).

    Date by date: shadow, haze, the low cloud layer then the high one over the surface, a
    per-date calibration gain, sensor noise, and 20 m bands resampled.
    """
    bands = (slice(None), None, None)
    shadow_loss = (1 - SHADOW_TRANSMISSION[bands]).astype(np.float32)
    shadow_offset = SHADOW_OFFSET[bands].astype(np.float32)
    haze = HAZE_SPECTRUM[bands].astype(np.float32)
    thick, thin = (
        spectrum[bands].astype(np.float32)
        for spectrum in (THICK_CLOUD_SPECTRUM, THIN_CLOUD_SPECTRUM)
    )
    gains = (1 + rng.normal(0, 0.015, surface.shape[:2])).astype(np.float32)
    image = np.empty(surface.shape, dtype=np.int16)
    for t, clear_frame in enumerate(surface):
        frame = clear_frame.copy()
        shade = sky.shadow[t]
        if shade.any():
            frame *= 1 - shade * shadow_loss
            frame -= shade * shadow_offset
        frame += sky.haze[t] * haze
        if sky.cumulus[t].any():
            colour = np.float32(sky.cumulus_brightness[t]) * (0.7 + 0.6 * sky.core[t]) * thick
            frame += sky.cumulus[t] * (colour - frame)
        if sky.cirrus[t].any():
            frame += sky.cirrus[t] * (np.float32(sky.cirrus_brightness[t]) * thin - frame)
        frame *= gains[t][bands]
        frame += rng.standard_normal(frame.shape, dtype=np.float32) * (
            0.002 + 0.006 * np.abs(frame)
        )
        frame[BANDS_20M] = resample_20m(frame[BANDS_20M])
        image[t] = np.clip(np.rint(frame * facts.REFLECTANCE_SCALE), *INT16_RANGE)
    return image


def make_patch(seed: int, spec: PatchSpec, size: int) -> SyntheticPatch:
    """All arrays of one synthetic patch, from its own generator seeded by (seed, patch id)."""
    rng = np.random.default_rng([seed, spec.patch_id])
    dates = list(facts.tile_calendars()[spec.tile])
    days = facts.day_offsets(dates).astype(np.float64)
    layout = make_layout(rng, size, spec.tile, first_parcel_id=spec.patch_id * 1000 + 1)
    surface = render_surface(rng, layout, days)
    regime, regional = tile_weather(seed, spec.tile, days)
    sky = make_sky(rng, regime, regional, dates, size)
    return SyntheticPatch(
        s2=observe(rng, surface, sky),
        target=np.repeat(layout.semantic[None], 3, axis=0),
        parcel_ids=layout.parcel_ids,
        clouds=cloud_truth(sky),
    )


def patch_footprint(rng: np.random.Generator, tile: str, size: int) -> list:
    """MultiPolygon coordinates of a patch footprint in Lambert-93 (EPSG:2154).

    A square of ``size`` 10 m pixels somewhere in the tile, rotated as the tile's UTM grid is
    in Lambert-93, north-west corner first, clockwise, as in the real metadata.
    """
    x_min, x_max, y_min, y_max = TILE_BOXES[tile]
    corner = np.array([rng.uniform(x_min, x_max), rng.uniform(y_min, y_max)])
    angle = np.radians(TILE_ROTATION_DEG[tile])
    east = size * 10.0 * np.array([np.cos(angle), np.sin(angle)])
    south = size * 10.0 * np.array([np.sin(angle), -np.cos(angle)])
    ring = [corner, corner + east, corner + east + south, corner + south, corner]
    return [[[[float(x), float(y)] for x, y in ring]]]


def patch_feature(index: int, spec: PatchSpec, patch: SyntheticPatch, geometry: list) -> dict:
    """The ``metadata.geojson`` feature of a patch, with the properties of real PASTIS."""
    calendar = facts.tile_calendars()[spec.tile]
    return {
        "id": str(index),
        "type": "Feature",
        "properties": {
            "Fold": spec.fold,
            "ID_PATCH": spec.patch_id,
            "N_Parcel": int(np.unique(patch.parcel_ids[patch.parcel_ids > 0]).size),
            "Parcel_Cover": float(np.mean(patch.parcel_ids > 0)),
            "TILE": spec.tile,
            "dates-S2": {str(k): int(date.strftime("%Y%m%d")) for k, date in enumerate(calendar)},
            "id": str(spec.patch_id),
        },
        "geometry": {"type": "MultiPolygon", "coordinates": geometry},
    }


def write_patch(root: Path, patch_id: int, patch: SyntheticPatch) -> None:
    """Write the ``.npy`` files of one patch under a PASTIS root."""
    np.save(root / "DATA_S2" / f"S2_{patch_id}.npy", patch.s2)
    np.save(root / "ANNOTATIONS" / f"TARGET_{patch_id}.npy", patch.target)
    np.save(root / "ANNOTATIONS" / f"ParcelIDs_{patch_id}.npy", patch.parcel_ids)
    np.save(root / facts.CLOUD_TRUTH_DIR / f"CLOUD_{patch_id}.npy", patch.clouds)


def band_moments(s2: np.ndarray) -> np.ndarray:
    """(3, 10) pixel count, sum and sum of squares per band over all dates and pixels."""
    moments = np.empty((3, s2.shape[1]))
    for band in range(s2.shape[1]):
        values = s2[:, band].astype(np.float64)
        moments[:, band] = values.size, values.sum(), np.square(values).sum()
    return moments


def norm_statistics(moments: dict[int, np.ndarray]) -> dict[str, dict[str, list[float]]]:
    """``NORM_S2_patch.json`` content from per-fold band moments."""
    stats = {}
    for fold in sorted(moments):
        count, total, squares = moments[fold]
        mean = total / count
        std = np.sqrt(np.maximum(squares / count - mean**2, 0.0))
        stats[f"Fold_{fold}"] = {"mean": mean.tolist(), "std": std.tolist()}
    return stats


def _write_json(data: object, path: Path) -> None:
    path.write_text(json.dumps(data, indent=4) + "\n")


def _check_target(root: Path) -> None:
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise FileExistsError(f"{root} exists and is not an empty folder; refusing to write there")


def generate_synthetic_pastis(
    root: Path | str, config: SyntheticConfig = SyntheticConfig(), progress: bool = True
) -> list[int]:
    """Write a synthetic PASTIS into ``root`` (absent or empty) and return its patch IDs.

    Everything is written into a temporary sibling folder that is renamed to ``root`` at the
    end, so an interrupted run never leaves a folder that looks complete.
    """
    root = Path(root)
    _check_target(root)
    root.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{root.name}.partial-", dir=root.parent))
    try:
        for folder in ("DATA_S2", "ANNOTATIONS", facts.CLOUD_TRUTH_DIR):
            (partial / folder).mkdir()
        specs = choose_patches(config.seed, config.patches_per_fold)
        features, moments = [], {}
        for index, spec in enumerate(tqdm(specs, desc="synthetic PASTIS", disable=not progress)):
            patch = make_patch(config.seed, spec, config.patch_size)
            write_patch(partial, spec.patch_id, patch)
            footprint = patch_footprint(
                np.random.default_rng([config.seed, spec.patch_id, 2]), spec.tile, config.patch_size
            )
            features.append(patch_feature(index, spec, patch, footprint))
            moments[spec.fold] = moments.get(spec.fold, 0) + band_moments(patch.s2)
        metadata = {
            "type": "FeatureCollection",
            "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::2154"}},
            "features": features,
        }
        _write_json(metadata, partial / "metadata.geojson")
        _write_json(norm_statistics(moments), partial / "NORM_S2_patch.json")
        _check_target(root)
        if root.exists():
            root.rmdir()
        os.rename(partial, root)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return [spec.patch_id for spec in specs]
