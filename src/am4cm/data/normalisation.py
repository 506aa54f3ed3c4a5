"""Band normalisation statistics for a set of train folds."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from am4cm.data import facts
from am4cm.data.pastis import NORM_FILE, PastisFormatError, open_s2


def stats_from_norm_file(root: Path | str, folds: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Band mean and std of ``folds`` from ``NORM_S2_patch.json``, averaged over the folds.

    This is how the official loader combines the per-fold statistics.
    """
    path = Path(root) / NORM_FILE
    try:
        table = json.loads(path.read_text())
        means = [table[f"Fold_{fold}"]["mean"] for fold in folds]
        stds = [table[f"Fold_{fold}"]["std"] for fold in folds]
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as error:
        raise PastisFormatError(
            path, f"has no usable statistics for folds {list(folds)} ({error})"
        ) from error
    mean, std = np.mean(means, axis=0), np.mean(stds, axis=0)
    if mean.shape != (facts.N_BANDS,) or std.shape != (facts.N_BANDS,) or np.any(std <= 0):
        raise PastisFormatError(path, f"statistics must be {facts.N_BANDS} means and positive stds")
    return mean.astype(np.float64), std.astype(np.float64)


def stats_from_data(
    root: Path | str, patches: Iterable[tuple[int, int]], progress: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Band mean and std over all pixels and dates of ``(patch_id, T)`` patches, streamed date by date."""
    total = np.zeros(facts.N_BANDS)
    total_sq = np.zeros(facts.N_BANDS)
    count = 0
    for patch_id, n_dates in tqdm(list(patches), desc="band statistics", disable=not progress):
        series = open_s2(root, patch_id, n_dates)
        for frame in series:
            values = frame.reshape(facts.N_BANDS, -1).astype(np.float64)
            total += values.sum(axis=1)
            total_sq += np.square(values).sum(axis=1)
            count += values.shape[1]
    if count == 0:
        raise ValueError("no pixels to compute band statistics from")
    mean = total / count
    return mean, np.sqrt(np.maximum(total_sq / count - np.square(mean), 1e-12))


def train_fold_stats(
    root: Path | str,
    folds: Sequence[int],
    patches: Iterable[tuple[int, int]],
    progress: bool = True,
) -> tuple[np.ndarray, np.ndarray, str]:
    """Statistics of the train folds: from ``NORM_S2_patch.json`` when present, else from the data.

    Returns mean, std and the source (``"NORM_S2_patch.json"`` or ``"computed"``).
    """
    if (Path(root) / NORM_FILE).exists():
        mean, std = stats_from_norm_file(root, folds)
        return mean, std, NORM_FILE
    mean, std = stats_from_data(root, patches, progress)
    return mean, std, "computed"
