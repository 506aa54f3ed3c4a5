"""Single-date spectral cloud and shadow rules usable with PASTIS's ten bands.

Rules take ``Bands``: a mapping from band name (``facts.BANDS`` names) to reflectance
(0-1, float32) arrays of one shape, so they run on one frame, a stack, or a scene that only
has some of the bands. Each rule names the bands it needs and raises ``KeyError`` when one
is missing. Thresholds are those of the cited papers, designed for top-of-atmosphere
reflectance; PASTIS holds surface reflectance, so they are a yardstick, not a truth.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from am4cm.clouds import REF_CLEAR, REF_CLOUD, REF_SHADOW, REF_THIN
from am4cm.data.facts import BANDS, REFLECTANCE_SCALE

Bands = Mapping[str, np.ndarray]


def as_bands(
    array: np.ndarray,
    names: Sequence[str] = BANDS,
    axis: int = -3,
    scale: float = REFLECTANCE_SCALE,
) -> dict[str, np.ndarray]:
    """Split a multi-band array into float32 reflectance (``value / scale``) keyed by band name."""
    array = np.asarray(array)
    if array.shape[axis] != len(names):
        raise ValueError(f"axis {axis} has {array.shape[axis]} bands, expected {len(names)}")
    inverse = np.float32(1.0 / scale)
    return {
        name: np.take(array, index, axis=axis).astype(np.float32) * inverse
        for index, name in enumerate(names)
    }


def pastis_bands(s2: np.ndarray) -> dict[str, np.ndarray]:
    """Reflectance bands of a PASTIS frame ``(10, H, W)`` or stack ``(T, 10, H, W)`` (int16)."""
    return as_bands(s2, BANDS, axis=-3, scale=REFLECTANCE_SCALE)


def _get(bands: Bands, *names: str) -> tuple[np.ndarray, ...]:
    missing = [name for name in names if name not in bands]
    if missing:
        raise KeyError(f"rule needs bands {missing}, have {sorted(bands)}")
    return tuple(bands[name] for name in names)


def _ratio(numerator: np.ndarray, denominator: np.ndarray, fill: float) -> np.ndarray:
    """``numerator / denominator`` where the denominator is positive, ``fill`` elsewhere."""
    out = np.full(np.broadcast(numerator, denominator).shape, fill, dtype=np.float32)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def normalised_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(a - b) / (a + b)``, 0 where ``a + b <= 0``."""
    return _ratio(a - b, a + b, 0.0)


def braaten_cohen_yang(bands: Bands, *, swir: bool = True) -> np.ndarray:
    """Braaten, Cohen & Yang (2015) bright-cloud rule: ``(B3 > 0.175 and B3 > B4) or B3 > 0.39``.

    With ``swir`` and a B11 band, also requires ``B11 > 0.2``, an optional SWIR brightness
    check for sensors that have SWIR (clouds stay bright there, water does not).
    """
    green, red = _get(bands, "B3", "B4")
    cloud = ((green > 0.175) & (green > red)) | (green > 0.39)
    if swir and "B11" in bands:
        cloud &= bands["B11"] > 0.2
    return cloud


def hot_test(bands: Bands) -> np.ndarray:
    """Haze Optimised Transform test (Zhang, Guindon & Cihlar 2002; form of Zhu & Woodcock 2012).

    ``B2 - 0.5 * B4 - 0.08 > 0``: haze and cloud raise blue above the clear-sky blue-red line.
    """
    blue, red = _get(bands, "B2", "B4")
    return blue - 0.5 * red - 0.08 > 0


def fmask_whiteness(bands: Bands, threshold: float = 0.7) -> np.ndarray:
    """Fmask whiteness test (Zhu & Woodcock 2012): flat visible spectrum.

    ``sum(|Bi - mean|) / mean < 0.7`` over B2, B3, B4; false where the visible mean is <= 0.
    """
    blue, green, red = _get(bands, "B2", "B3", "B4")
    mean = (blue + green + red) / 3
    spread = np.abs(blue - mean) + np.abs(green - mean) + np.abs(red - mean)
    return _ratio(spread, mean, np.inf) < threshold


def fmask_basic(bands: Bands) -> np.ndarray:
    """Fmask basic test without the thermal band (Zhu & Woodcock 2012).

    ``B12 > 0.03 and NDSI < 0.8 and NDVI < 0.8`` (NDSI from B3, B11; NDVI from B8, B4).
    """
    green, red, nir, swir1, swir2 = _get(bands, "B3", "B4", "B8", "B11", "B12")
    ndsi = normalised_difference(green, swir1)
    ndvi = normalised_difference(nir, red)
    return (swir2 > 0.03) & (ndsi < 0.8) & (ndvi < 0.8)


def fmask_nir_swir(bands: Bands) -> np.ndarray:
    """Fmask NIR/SWIR test (Zhu & Woodcock 2012, Landsat "B4/B5"): ``B8 / B11 > 0.75``.

    Rejects bright rock and bare soil, whose SWIR exceeds NIR.
    """
    nir, swir1 = _get(bands, "B8", "B11")
    return _ratio(nir, swir1, 0.0) > 0.75


def fmask_water(bands: Bands) -> np.ndarray:
    """Fmask water test (Zhu & Woodcock 2012).

    ``(NDVI < 0.01 and B8 < 0.11) or (NDVI < 0.1 and B8 < 0.05)``.
    """
    red, nir = _get(bands, "B4", "B8")
    ndvi = normalised_difference(nir, red)
    return ((ndvi < 0.01) & (nir < 0.11)) | ((ndvi < 0.1) & (nir < 0.05))


def fmask_potential_cloud(bands: Bands) -> np.ndarray:
    """Fmask potential cloud pixels without thermal or cirrus bands (Zhu & Woodcock 2012).

    Basic, whiteness, HOT and NIR/SWIR tests together.
    """
    return fmask_basic(bands) & fmask_whiteness(bands) & hot_test(bands) & fmask_nir_swir(bands)


def dark_shadow(bands: Bands, threshold: float = 0.15) -> np.ndarray:
    """Dark-pixel shadow rule after Zhai et al. (2018): cloud shadow index ``(B8 + B11) / 2``.

    Shadow where the index is below a fixed ``threshold`` (their threshold adapts to the scene,
    which a fully clouded frame would distort) and the Fmask water test is false.
    """
    nir, swir1 = _get(bands, "B8", "B11")
    return ((nir + swir1) / 2 < threshold) & ~fmask_water(bands)


def spectral_codes(bands: Bands) -> np.ndarray:
    """Combine the rules into reference codes (uint8, the bands' shape).

    Cloud: Fmask potential cloud and Braaten-Cohen-Yang (bright); thin cloud: Fmask potential
    cloud that is not bright; shadow: the dark rule outside potential cloud; else clear.
    """
    potential = fmask_potential_cloud(bands)
    bright = braaten_cohen_yang(bands)
    shadow = dark_shadow(bands) & ~potential
    codes = np.full(potential.shape, REF_CLEAR, dtype=np.uint8)
    codes[shadow] = REF_SHADOW
    codes[potential & ~bright] = REF_THIN
    codes[potential & bright] = REF_CLOUD
    return codes


def spectral_mask(s2: np.ndarray, days: np.ndarray | None = None) -> np.ndarray:
    """Single-date reference mask ``(T, H, W)`` uint8 of a PASTIS stack, one date at a time.

    ``days`` is accepted for the common detector signature and not used.
    """
    n_dates, _, height, width = s2.shape
    mask = np.empty((n_dates, height, width), dtype=np.uint8)
    for t in range(n_dates):
        mask[t] = spectral_codes(pastis_bands(s2[t]))
    return mask
