"""Registry of reference detectors, agreement scores, and the real labelled test scene."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from am4cm.clouds import REF_CLEAR, REF_CLOUD, REF_NAMES, REF_SHADOW, collapse_thin
from am4cm.clouds.csmask import csmask_available, csmask_frame, csmask_mask
from am4cm.clouds.multitemporal import multitemporal_mask, multitemporal_series
from am4cm.clouds.spectral import as_bands, spectral_codes, spectral_mask

Detector = Callable[[np.ndarray, np.ndarray], np.ndarray]
"""``(s2 (T, 10, H, W) int16, days (T,) int) -> (T, H, W) uint8`` reference mask."""

REFERENCE_DETECTORS: dict[str, Detector] = {
    "spectral": spectral_mask,
    "multitemporal": multitemporal_mask,
    "csmask": csmask_mask,
}
"""Reference detectors by name, all with the ``Detector`` signature."""

AGREEMENT_CLASSES: tuple[int, ...] = (REF_CLEAR, REF_CLOUD, REF_SHADOW)
"""Classes scored by ``agreement``; thin cloud counts as cloud."""

SCENE_BANDS: tuple[str, ...] = ("B2", "B3", "B4", "B8", "B11", "B12")
"""Bands of the labelled scene's ``img`` (channel-last), the ``csmask.CSMASK_BANDS`` order."""
SCENE_LABELS: dict[int, int] = {
    0: REF_SHADOW,
    1: REF_CLEAR,
    2: REF_CLEAR,
    3: REF_CLEAR,
    4: REF_CLOUD,
}
"""Labels of the scene's ``msk`` (0 shadow, 1-3 clear, 4 cloud) to reference codes."""


def available_references(synthetic: bool) -> list[str]:
    """Names of the references usable here: "truth" (synthetic data only) and the detectors.

    "csmask" is listed only when ukis-csmask is installed.
    """
    names = ["truth"] if synthetic else []
    return names + [name for name in REFERENCE_DETECTORS if name != "csmask" or csmask_available()]


def agreement(pred: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Cohen's kappa, accuracy and per-class precision, recall, F1 and IoU of two masks.

    Both are reference-coded masks of one shape; thin cloud is merged into cloud and scores
    are over clear, cloud and shadow. Keys: ``kappa``, ``accuracy``, ``n`` and
    ``{class}_{precision|recall|f1|iou}``; undefined ratios are NaN.
    """
    pred, truth = collapse_thin(pred), collapse_thin(truth)
    if pred.shape != truth.shape:
        raise ValueError(f"shapes differ: {pred.shape} vs {truth.shape}")
    k = len(AGREEMENT_CLASSES)
    if pred.size and max(pred.max(), truth.max()) >= k:
        raise ValueError("masks hold codes outside clear/cloud/shadow/thin")
    confusion = np.bincount(truth.ravel().astype(np.intp) * k + pred.ravel(), minlength=k * k)
    confusion = confusion.reshape(k, k).astype(np.float64)
    n = confusion.sum()
    hits = np.diag(confusion)
    predicted, actual = confusion.sum(axis=0), confusion.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        observed = hits.sum() / n
        expected = (predicted * actual).sum() / n**2
        scores: dict[str, float] = {
            "kappa": float((observed - expected) / (1 - expected)),
            "accuracy": float(observed),
            "n": float(n),
        }
        for code in AGREEMENT_CLASSES:
            tp = hits[code]
            name = REF_NAMES[code]
            scores[f"{name}_precision"] = float(tp / predicted[code])
            scores[f"{name}_recall"] = float(tp / actual[code])
            scores[f"{name}_f1"] = float(2 * tp / (predicted[code] + actual[code]))
            scores[f"{name}_iou"] = float(tp / (predicted[code] + actual[code] - tp))
    return scores


def load_labelled_scene(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """The real labelled scene: ``img`` (H, W, 6) float32 reflectance and truth (H, W) codes."""
    with np.load(path) as data:
        img = data["img"].astype(np.float32)
        labels = data["msk"][..., 0]
    lut = np.full(256, 255, dtype=np.uint8)
    for label, code in SCENE_LABELS.items():
        lut[label] = code
    truth = lut[labels]
    if (truth == 255).any():
        raise ValueError(f"unknown labels in {path}: {np.unique(labels).tolist()}")
    return img, truth


def scene_masks(img: np.ndarray) -> dict[str, np.ndarray]:
    """Masks (H, W) of a channel-last ``SCENE_BANDS`` image from every detector that applies.

    "spectral" and "multitemporal" (a one-date series: its single-date part) use only the
    bands present; "csmask_l1c" and "csmask_l2a" (6-band models) need ukis-csmask.
    """
    bands = as_bands(img, SCENE_BANDS, axis=-1, scale=1.0)
    masks = {
        "spectral": spectral_codes(bands),
        "multitemporal": multitemporal_series(lambda t: bands, np.zeros(1, dtype=np.int64))[0],
    }
    if csmask_available():
        for level in ("l1c", "l2a"):
            masks[f"csmask_{level}"] = csmask_frame(img, product_level=level)
    return masks
