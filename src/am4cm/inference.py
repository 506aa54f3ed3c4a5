"""Run a trained model over every pixel of whole patches, streaming rows from the memory map.

Memory is bounded by one patch: a patch is read a band of rows at a time, and only its
outputs (class map, confidence and, on request, attention) are kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from am4cm.data.pastis import open_s2, read_labels, read_metadata, read_parcels
from am4cm.evaluation import ConfusionAccumulator, parcel_votes
from am4cm.models.ltae import PixelLTAE
from am4cm.training.train import autocast, predict_classes


@dataclass(frozen=True)
class PatchPrediction:
    """Model outputs for one patch: class (H, W) uint8, its softmax probability (H, W) float32,
    and optionally the attention (n_head, T, H, W) float16."""

    classes: np.ndarray
    confidence: np.ndarray
    attention: np.ndarray | None = None


def predict_patch(
    model: PixelLTAE,
    series: np.ndarray,
    days: Sequence[int],
    device: torch.device,
    with_attention: bool = False,
    pixels_per_batch: int = 8192,
) -> PatchPrediction:
    """Classify every pixel of a (T, 10, H, W) series; attention per head, date and pixel on request."""
    n_dates, _, height, width = series.shape
    rows_per_batch = max(1, pixels_per_batch // width)
    classes = np.empty((height, width), np.uint8)
    confidence = np.empty((height, width), np.float32)
    attention = (
        np.empty((model.config.n_head, n_dates, height, width), np.float16)
        if with_attention
        else None
    )
    day_tensor = torch.as_tensor(np.asarray(days, dtype=np.int64), device=device)
    model.eval()
    with torch.inference_mode(), autocast(device):
        for top in range(0, height, rows_per_batch):
            bottom = min(height, top + rows_per_batch)
            block = np.array(series[:, :, top:bottom])  # (T, C, h, W), a writable copy
            x = torch.from_numpy(block.transpose(2, 3, 0, 1).reshape(-1, n_dates, block.shape[1]))
            x = x.to(device)
            days_batch = day_tensor.expand(len(x), n_dates)
            mask = torch.ones_like(days_batch, dtype=torch.bool)
            if attention is None:
                logits = model(x, days_batch, mask)
            else:
                logits, weights = model(x, days_batch, mask, return_attention=True)
            probabilities = torch.softmax(logits.float(), dim=1)
            predicted = predict_classes(logits)
            shape = (bottom - top, width)
            classes[top:bottom] = predicted.cpu().numpy().reshape(shape)
            confidence[top:bottom] = (
                probabilities.gather(1, predicted[:, None]).cpu().numpy().reshape(shape)
            )
            if attention is not None:
                attention[:, :, top:bottom] = (
                    weights.float().cpu().numpy().reshape(-1, *shape, n_dates).transpose(0, 3, 1, 2)
                )
    return PatchPrediction(classes, confidence, attention)


@dataclass
class TestEvaluation:
    """What a pass over the test patches yields: the pixel confusion, parcel votes, sample maps."""

    pixel_confusion: ConfusionAccumulator = field(default_factory=ConfusionAccumulator)
    parcels: list[pd.DataFrame] = field(default_factory=list)
    samples: list[dict[str, object]] = field(default_factory=list)

    def parcel_table(self) -> pd.DataFrame:
        """One row per (patch, parcel) with its true class and majority-vote prediction."""
        return pd.concat(self.parcels, ignore_index=True)


def evaluate_patches(
    root: Path | str,
    patch_ids: Iterable[int],
    model: PixelLTAE,
    device: torch.device,
    n_samples: int = 3,
    progress: bool = True,
) -> TestEvaluation:
    """Predict every pixel of each patch; accumulate pixel and parcel results.

    The first ``n_samples`` patches keep their maps (clearest-date series index, truth and
    prediction) for the classification-map figure.
    """
    metadata = read_metadata(root).set_index("ID_PATCH")
    result = TestEvaluation()
    for patch_id in tqdm(list(patch_ids), desc="test patches", disable=not progress):
        n_dates = int(metadata.loc[patch_id, "T"])
        series = open_s2(root, patch_id, n_dates)
        prediction = predict_patch(model, series, metadata.loc[patch_id, "days"], device)
        truth = read_labels(root, patch_id)
        result.pixel_confusion.add(truth, prediction.classes)
        votes = parcel_votes(read_parcels(root, patch_id), truth, prediction.classes)
        result.parcels.append(votes.assign(patch_id=patch_id))
        if len(result.samples) < n_samples:
            result.samples.append(
                {
                    "patch_id": patch_id,
                    "series": series,
                    "dates": metadata.loc[patch_id, "dates"],
                    "truth": truth,
                    "prediction": prediction.classes,
                }
            )
    return result
