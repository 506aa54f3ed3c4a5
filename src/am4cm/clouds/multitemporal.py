"""Weight-free multi-temporal cloud and shadow detector in the spirit of MAJA.

After Hagolle et al. (2010, "A multi-temporal method for cloud detection", RSE 114): a date
is cloudy at a pixel when its blue reflectance rises above that of the last clear date by
more than a threshold that grows with the time gap, and the red rises consistently (clouds
are white, surface changes are not). Shadows are sharp joint drops of NIR (B8) and SWIR
(B11) against the clear dates before and after. Any non-cloud date (shadowed or not)
becomes the reference of later dates. Only the blue-rise rule is Hagolle et al.'s; the red
consistency window, thin/thick split and shadow test are this module's choices (see
``MultiTemporalParams``). Every test is per pixel and vectorised; the
series is read one date at a time (two passes), so memory holds a few frames plus the
``(T, H, W)`` uint8 outputs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from am4cm.clouds import REF_CLEAR, REF_CLOUD, REF_SHADOW, REF_THIN
from am4cm.clouds.spectral import Bands, dark_shadow, pastis_bands, spectral_codes


@dataclass(frozen=True)
class MultiTemporalParams:
    """Parameters of the detector; reflectances are 0-1, gaps in days.

    - ``blue_rise``: blue increase over the last clear date that flags a cloud at a 0-day gap.
    - ``days_scale``: the threshold is ``blue_rise * (1 + gap / days_scale)`` ...
    - ``blue_rise_cap``: ... capped here (reached at a 30-day gap with the defaults).
    - ``red_ratio_min``, ``red_ratio_max``: the red increase must lie within these multiples
      of the blue increase (white cloud); outside, the change is taken as surface change.
    - ``thick_rise``: confirmed clouds whose blue rises less are labelled thin cloud.
    - ``max_reference_age``: a last clear date older than this many days is not used; the
      single-date rules (``spectral.spectral_codes``) decide instead, as they do before any
      clear date exists.
    - ``shadow_ratio``: shadow needs B8 and B11 below this fraction of a clear neighbour's ...
    - ``shadow_min_drop``: ... and B8 to drop by at least this much.
    - ``dilation``: iterations of a 3x3-cross binary dilation of each date's cloud mask
      (0: none); dilated pixels become cloud and are not used as clear references.
    """

    blue_rise: float = 0.03
    days_scale: float = 30.0
    blue_rise_cap: float = 0.06
    red_ratio_min: float = 0.5
    red_ratio_max: float = 1.5
    thick_rise: float = 0.1
    max_reference_age: int = 90
    shadow_ratio: float = 0.7
    shadow_min_drop: float = 0.03
    dilation: int = 0


DEFAULT_PARAMS = MultiTemporalParams()

_NO_REF, _DROP, _NO_DROP = 0, 1, 2


def blue_threshold(
    gap_days: np.ndarray | float, params: MultiTemporalParams = DEFAULT_PARAMS
) -> np.ndarray:
    """Blue rise that flags a cloud after ``gap_days`` since the last clear date."""
    gap = np.asarray(gap_days, dtype=np.float32)
    return np.minimum(params.blue_rise * (1 + gap / params.days_scale), params.blue_rise_cap)


def temporal_cloud(
    bands: Bands,
    ref_blue: np.ndarray,
    ref_red: np.ndarray,
    gap_days: np.ndarray,
    params: MultiTemporalParams = DEFAULT_PARAMS,
) -> tuple[np.ndarray, np.ndarray]:
    """Blue-rise test confirmed by red/blue consistency; returns ``(cloud, thick)`` masks."""
    rise_blue = bands["B2"] - ref_blue
    rise_red = bands["B4"] - ref_red
    white = (rise_red >= params.red_ratio_min * rise_blue) & (
        rise_red <= params.red_ratio_max * rise_blue
    )
    cloud = (rise_blue > blue_threshold(gap_days, params)) & white
    return cloud, cloud & (rise_blue >= params.thick_rise)


def _drop(
    bands: Bands,
    ref_nir: np.ndarray,
    ref_swir: np.ndarray,
    has_ref: np.ndarray,
    params: MultiTemporalParams,
) -> np.ndarray:
    """Per pixel: no clear neighbour, sharp NIR/SWIR drop against it, or no drop."""
    nir, swir = bands["B8"], bands["B11"]
    drop = (
        (nir < params.shadow_ratio * ref_nir)
        & (swir < params.shadow_ratio * ref_swir)
        & (ref_nir - nir >= params.shadow_min_drop)
    )
    return np.where(has_ref, np.where(drop, _DROP, _NO_DROP), _NO_REF).astype(np.uint8)


def multitemporal_series(
    frame: Callable[[int], Bands],
    days: np.ndarray,
    params: MultiTemporalParams = DEFAULT_PARAMS,
) -> np.ndarray:
    """Reference mask ``(T, ...)`` uint8 of a series whose date ``t`` has bands ``frame(t)``.

    Forward pass: clouds against the last clear date (single-date rules where none is fresh)
    and the NIR/SWIR drop against it. Backward pass: the drop against the next clear date;
    a shadow is a non-cloud pixel with a drop against every clear neighbour that exists, or,
    with none, one that the single-date dark rule flags. Needs B2, B3, B4, B8, B11, B12.
    """
    days = np.asarray(days, dtype=np.int64)
    first = frame(0)
    shape = first["B2"].shape
    mask = np.empty((len(days), *shape), dtype=np.uint8)
    before = np.empty((len(days), *shape), dtype=np.uint8)
    ref = {name: np.zeros(shape, dtype=np.float32) for name in ("B2", "B4", "B8", "B11")}
    ref_day = np.zeros(shape, dtype=np.int64)
    has_ref = np.zeros(shape, dtype=bool)
    for t, day in enumerate(days):
        bands = first if t == 0 else frame(t)
        gap = day - ref_day
        cloud, thick = temporal_cloud(bands, ref["B2"], ref["B4"], gap, params)
        codes = np.where(cloud, np.where(thick, REF_CLOUD, REF_THIN), REF_CLEAR)
        single = spectral_codes(bands)
        single[single == REF_SHADOW] = REF_CLEAR
        codes = np.where(has_ref & (gap <= params.max_reference_age), codes, single)
        if params.dilation:
            grown = ndimage.binary_dilation(codes != REF_CLEAR, iterations=params.dilation)
            codes[grown & (codes == REF_CLEAR)] = REF_CLOUD
        mask[t] = codes
        before[t] = _drop(bands, ref["B8"], ref["B11"], has_ref, params)
        clear = codes == REF_CLEAR
        for name, values in ref.items():
            values[clear] = bands[name][clear]
        ref_day[clear] = day
        has_ref |= clear
    next_nir = np.zeros(shape, dtype=np.float32)
    next_swir = np.zeros(shape, dtype=np.float32)
    has_next = np.zeros(shape, dtype=bool)
    for t in reversed(range(len(days))):
        bands = frame(t)
        after = _drop(bands, next_nir, next_swir, has_next, params)
        neither = (before[t] == _NO_REF) & (after == _NO_REF)
        temporal = (before[t] != _NO_DROP) & (after != _NO_DROP) & ~neither
        clear = mask[t] == REF_CLEAR
        mask[t][clear & (temporal | (neither & dark_shadow(bands)))] = REF_SHADOW
        next_nir[clear] = bands["B8"][clear]
        next_swir[clear] = bands["B11"][clear]
        has_next |= clear
    return mask


def multitemporal_mask(
    s2: np.ndarray,
    days: np.ndarray,
    params: MultiTemporalParams = DEFAULT_PARAMS,
) -> np.ndarray:
    """Reference mask ``(T, H, W)`` uint8 of a PASTIS stack ``(T, 10, H, W)`` with day offsets."""
    if len(days) != s2.shape[0]:
        raise ValueError(f"{len(days)} day offsets for {s2.shape[0]} dates")
    return multitemporal_series(lambda t: pastis_bands(s2[t]), days, params)
