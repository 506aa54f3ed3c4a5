"""Attention of a trained model over every pixel of a patch, saved with its dates and predictions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from am4cm.data.pastis import open_s2, read_metadata
from am4cm.inference import predict_patch
from am4cm.io import atomic_path
from am4cm.models.ltae import PixelLTAE

ATTENTION_KEYS = ("attention", "mean_attention", "classes", "confidence", "days", "dates")


def extract_patch_attention(
    root: Path | str, patch_id: int, model: PixelLTAE, device: torch.device, path: Path | str
) -> None:
    """Write ``path`` (.npz): attention (n_head, T, H, W) float16, its mean over heads
    (T, H, W) float32, predicted classes (H, W) uint8 and their confidence, the day offsets
    and the dates as YYYYMMDD ints, all aligned with the patch's time axis."""
    row = read_metadata(root).set_index("ID_PATCH").loc[patch_id]
    series = open_s2(root, patch_id, int(row["T"]))
    prediction = predict_patch(model, series, row["days"], device, with_attention=True)
    with atomic_path(path) as tmp:
        np.savez(
            tmp,
            attention=prediction.attention,
            mean_attention=prediction.attention.mean(axis=0, dtype=np.float32),
            classes=prediction.classes,
            confidence=prediction.confidence,
            days=np.asarray(row["days"], dtype=np.int32),
            dates=np.array([int(date.strftime("%Y%m%d")) for date in row["dates"]], np.int32),
        )


def load_patch_attention(path: Path | str) -> dict[str, np.ndarray]:
    """Read an attention file written by :func:`extract_patch_attention`."""
    with np.load(path) as archive:
        return {key: archive[key] for key in ATTENTION_KEYS}
