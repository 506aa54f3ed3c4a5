"""Reference cloud detectors for PASTIS frames, the yardsticks attention is compared against.

Every detector returns, per patch, a ``(T, H, W)`` uint8 mask in one convention:
``REF_CLEAR`` 0, ``REF_CLOUD`` 1, ``REF_SHADOW`` 2 and ``REF_THIN`` 3 (thin cloud, only where
the source distinguishes it). Modules: ``spectral`` (single-date rules), ``multitemporal``
(MAJA-like, weight-free), ``csmask`` (the ukis-csmask CNN, optional) and ``references``
(registry and agreement scores).
"""

from __future__ import annotations

import numpy as np

from am4cm.data.facts import CLOUD_TRUTH_CODES

REF_CLEAR = 0
REF_CLOUD = 1
REF_SHADOW = 2
REF_THIN = 3
REF_NAMES: dict[int, str] = {
    REF_CLEAR: "clear",
    REF_CLOUD: "cloud",
    REF_SHADOW: "shadow",
    REF_THIN: "thin_cloud",
}
"""Name of each reference code."""

_TRUTH_TO_REF: dict[str, int] = {
    "clear": REF_CLEAR,
    "cloud": REF_CLOUD,
    "thin_cloud": REF_THIN,
    "shadow": REF_SHADOW,
}


def truth_to_reference(truth: np.ndarray) -> np.ndarray:
    """Map synthetic cloud truth (0 clear, 1 thick, 2 thin, 3 shadow) to the reference codes."""
    truth = np.asarray(truth)
    known = list(CLOUD_TRUTH_CODES.values())
    if not np.isin(truth, known).all():
        raise ValueError(f"unknown cloud truth codes: {np.setdiff1d(truth, known).tolist()}")
    lut = np.zeros(max(known) + 1, dtype=np.uint8)
    for name, code in CLOUD_TRUTH_CODES.items():
        lut[code] = _TRUTH_TO_REF[name]
    return lut[truth.astype(np.intp)]


def collapse_thin(mask: np.ndarray) -> np.ndarray:
    """Turn thin cloud into cloud: the three-class clear/cloud/shadow view of a reference mask."""
    mask = np.asarray(mask)
    return np.where(mask == REF_THIN, REF_CLOUD, mask).astype(np.uint8)
