"""Cloud and shadow masks from ukis-csmask (DLR, Apache-2.0), an optional dependency.

ukis-csmask ships U-Net (EfficientNet-B4) ONNX weights inside its wheel and runs them with
onnxruntime: install with ``pip install "ukis-csmask[cpu]"`` (the ``clouds`` extra of this
project). Its 6-band models take Blue, Green, Red, NIR, SWIR16, SWIR22 (PASTIS channels
0, 1, 2, 6, 8, 9) as float32 reflectance 0-1 and return 0 clear, 1 cloud, 2 cloud shadow,
the reference codes of ``am4cm.clouds``. The import is lazy: nothing here needs the package
until a mask is asked for.
"""

from __future__ import annotations

import importlib.util
import json
import warnings
from functools import cache
from importlib import resources
from typing import Any

import numpy as np

from am4cm.data.facts import BANDS, REFLECTANCE_SCALE

CSMASK_BANDS: tuple[str, ...] = ("B2", "B3", "B4", "B8", "B11", "B12")
"""Sentinel-2 bands of the 6-band models, in their input order (4-band models: the first 4)."""
CSMASK_CHANNELS: tuple[int, ...] = tuple(BANDS.index(band) for band in CSMASK_BANDS)
"""PASTIS channels of ``CSMASK_BANDS``: (0, 1, 2, 6, 8, 9)."""
PRODUCT_LEVELS: tuple[str, ...] = ("l1c", "l2a")
"""Models trained on top-of-atmosphere (L1C) or surface (L2A) reflectance; PASTIS is L2A."""
_BAND_ORDER: tuple[str, ...] = ("blue", "green", "red", "nir", "swir16", "swir22")
_TILE_OVERLAP = 0.2
"""Overlap of ``ukis_csmask.mask.CSmask`` tiles; frames that fit one tile give the same mask."""
_INSTALL_HINT = 'ukis-csmask is not installed: pip install "ukis-csmask[cpu]" (extra "clouds")'


def csmask_available() -> bool:
    """Whether ukis-csmask and onnxruntime can be imported."""
    return all(
        importlib.util.find_spec(name) is not None for name in ("ukis_csmask", "onnxruntime")
    )


def _require() -> None:
    if not csmask_available():
        raise ImportError(_INSTALL_HINT)


def _check(product_level: str, n_bands: int) -> None:
    if product_level not in PRODUCT_LEVELS:
        raise ValueError(f"product_level must be one of {PRODUCT_LEVELS}, got {product_level!r}")
    if n_bands not in (4, 6):
        raise ValueError(f"n_bands must be 4 or 6, got {n_bands}")


def csmask_frame(
    img: np.ndarray, product_level: str = "l2a", n_bands: int = 6, threads: int = 0
) -> np.ndarray:
    """Mask ``(H, W)`` uint8 of one image ``(H, W, >= n_bands)`` in ``CSMASK_BANDS`` order.

    Runs ``ukis_csmask.mask.CSmask`` itself (any image size); ``threads`` 0 lets
    onnxruntime choose.
    """
    _check(product_level, n_bands)
    _require()
    from ukis_csmask.mask import CSmask

    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="Your input image is smaller", category=UserWarning
        )
        model = CSmask(
            img=np.ascontiguousarray(img[..., :n_bands], dtype=np.float32),
            band_order=list(_BAND_ORDER[:n_bands]),
            product_level=product_level,
            intra_op_num_threads=threads,
        )
    return model.csm[..., 0].astype(np.uint8)


@cache
def _model(
    product_level: str, n_bands: int, threads: int
) -> tuple[Any, np.ndarray, np.ndarray, int]:
    """Session, band mean and std ``(n, 1, 1)`` and tile size of a packaged model.

    Mean and std stay float64 so normalisation rounds as in ``CSmask.normalize``.
    """
    import onnxruntime

    root = resources.files("ukis_csmask")
    stem = f"model_{n_bands}b_{product_level}"
    meta = json.loads(root.joinpath(f"{stem}.json").read_text())
    stats = meta["data"]["dataset_statistics"]
    if tuple(stats["band_names"]) != _BAND_ORDER[:n_bands]:
        raise RuntimeError(f"unexpected band order in {stem}.json: {stats['band_names']}")
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    with resources.as_file(root.joinpath(f"{stem}.onnx")) as path:
        session = onnxruntime.InferenceSession(
            str(path), sess_options=options, providers=onnxruntime.get_available_providers()
        )
    mean, std = (np.asarray(values, dtype=np.float64)[:, None, None] for values in stats["img"])
    tile = int(meta["data"]["target_size"][0])
    return session, mean, std, tile


def csmask_mask(
    s2: np.ndarray,
    days: np.ndarray | None = None,
    *,
    product_level: str = "l2a",
    n_bands: int = 6,
    batch_size: int = 8,
    threads: int = 0,
) -> np.ndarray:
    """ukis-csmask mask ``(T, H, W)`` uint8 of a PASTIS stack ``(T, 10, H, W)``.

    Frames that fit in one model tile (PASTIS's 128 x 128 do) run ``batch_size`` dates per
    call, padded symmetrically into the tile exactly as ``CSmask`` pads them, so the mask is
    the package's; larger frames go through ``csmask_frame`` one date at a time. ``days`` is
    accepted for the common detector signature and not used.
    """
    _check(product_level, n_bands)
    _require()
    n_dates, _, height, width = s2.shape
    channels = list(CSMASK_CHANNELS[:n_bands])
    session, mean, std, tile = _model(product_level, n_bands, threads)
    offset = int(tile * _TILE_OVERLAP)
    step = int(tile - tile * _TILE_OVERLAP)
    mask = np.empty((n_dates, height, width), dtype=np.uint8)
    if offset + max(height, width) > step:
        for t in range(n_dates):
            img = np.moveaxis(np.asarray(s2[t, channels], dtype=np.float32), 0, -1)
            mask[t] = csmask_frame(img / REFLECTANCE_SCALE, product_level, n_bands, threads)
        return mask
    pad = ((0, 0), (0, 0), (offset, tile - offset - height), (offset, tile - offset - width))
    input_name = session.get_inputs()[0].name
    for start in range(0, n_dates, batch_size):
        frames = np.asarray(s2[start : start + batch_size, channels], dtype=np.float32)
        x = (frames / np.float32(REFLECTANCE_SCALE) - mean).astype(np.float32)
        x = (x / std).astype(np.float32)
        logits = session.run(None, {input_name: np.pad(x, pad, mode="symmetric")})[0]
        crop = logits[:, :, offset : offset + height, offset : offset + width]
        mask[start : start + len(frames)] = crop.argmax(axis=1)
    return mask
