"""The on-disk pixel cache: time series of sampled pixels, built once, memory-mapped in training.

A cache folder holds, for each split (``train``, ``val``), arrays with one row per sampled
pixel, padded at the end of the time axis to the longest series of the split:
``{split}_x.npy`` int16 (N, T_max, 10) raw reflectance, ``{split}_days.npy`` int16
(N, T_max) day offsets, ``{split}_length.npy`` int16 (N,) real dates, ``{split}_label.npy``
uint8, ``{split}_patch.npy`` int32, ``{split}_row.npy`` / ``{split}_col.npy`` int16, plus
``cache.json`` (sampling settings, counts, train-fold band statistics). Training reads
batches from the memory maps, so its memory does not grow with the dataset.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from am4cm.data import facts
from am4cm.data.normalisation import train_fold_stats
from am4cm.data.pastis import open_s2, read_labels, read_metadata

CACHE_SPLITS = ("train", "val")
FIELDS = ("x", "days", "length", "label", "patch", "row", "col")


@dataclass(frozen=True)
class SamplingConfig:
    """How pixels are drawn from each patch.

    ``class_balance`` 0 draws uniformly among the non-void pixels of a patch; 1 gives every
    class present in the patch the same expected number of draws; values between
    interpolate (weight of a pixel = count of its class in the patch ** -class_balance).
    """

    pixels_per_patch: int = 2000
    class_balance: float = 0.5
    seed: int = 0


def sample_pixels(
    labels: np.ndarray, config: SamplingConfig, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Rows and columns of the pixels drawn from one patch (void excluded), sorted row-major."""
    flat = labels.ravel()
    candidates = np.flatnonzero(flat != facts.VOID_CLASS)
    if candidates.size == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    counts = np.bincount(flat[candidates], minlength=facts.N_CLASSES).astype(np.float64)
    weights = counts[flat[candidates]] ** -config.class_balance
    size = min(config.pixels_per_patch, candidates.size)
    chosen = np.sort(rng.choice(candidates, size=size, replace=False, p=weights / weights.sum()))
    return np.divmod(chosen, labels.shape[1])


def patch_rng(seed: int, patch_id: int) -> np.random.Generator:
    """A generator of its own for each patch, so samples do not depend on patch order."""
    return np.random.default_rng([seed, patch_id])


def build_split(
    root: Path | str,
    metadata: pd.DataFrame,
    patch_ids: Sequence[int],
    config: SamplingConfig,
    folder: Path,
    split: str,
    progress: bool = True,
) -> int:
    """Sample pixels of ``patch_ids`` and write the split's arrays into ``folder``; return N."""
    missing = sorted(set(patch_ids) - set(metadata["ID_PATCH"]))
    if missing:
        raise ValueError(f"{split}: patches {missing[:5]} are not in metadata.geojson")
    rows = metadata.set_index("ID_PATCH").loc[list(patch_ids)]
    samples = []
    for patch_id in tqdm(patch_ids, desc=f"sample {split} pixels", disable=not progress):
        labels = read_labels(root, patch_id)
        row_index, col_index = sample_pixels(labels, config, patch_rng(config.seed, patch_id))
        samples.append((row_index, col_index, labels[row_index, col_index]))
    total = sum(len(row_index) for row_index, _, _ in samples)
    if total == 0:
        raise ValueError(f"{split}: the patches {list(patch_ids)[:5]}... hold no labelled pixel")
    t_max = int(rows["T"].max())
    arrays = {
        "x": ((total, t_max, facts.N_BANDS), np.int16),
        "days": ((total, t_max), np.int16),
        "length": ((total,), np.int16),
        "label": ((total,), np.uint8),
        "patch": ((total,), np.int32),
        "row": ((total,), np.int16),
        "col": ((total,), np.int16),
    }
    out = {
        name: np.lib.format.open_memmap(folder / f"{split}_{name}.npy", "w+", dtype, shape)
        for name, (shape, dtype) in arrays.items()
    }
    start = 0
    for patch_id, (row_index, col_index, sampled_labels) in zip(patch_ids, samples, strict=True):
        n_dates = int(rows.loc[patch_id, "T"])
        stop = start + len(row_index)
        series = open_s2(root, patch_id, n_dates)
        out["x"][start:stop, :n_dates] = np.asarray(series[:, :, row_index, col_index]).transpose(
            2, 0, 1
        )
        out["x"][start:stop, n_dates:] = 0
        out["days"][start:stop, :n_dates] = np.asarray(rows.loc[patch_id, "days"], dtype=np.int16)
        out["days"][start:stop, n_dates:] = 0
        out["length"][start:stop] = n_dates
        out["label"][start:stop] = sampled_labels
        out["patch"][start:stop] = patch_id
        out["row"][start:stop] = row_index
        out["col"][start:stop] = col_index
        start = stop
    for array in out.values():
        array.flush()
    return total


def build_cache(
    root: Path | str,
    split: dict[str, object],
    config: SamplingConfig,
    folder: Path | str,
    progress: bool = True,
) -> dict[str, object]:
    """Build the pixel cache of one run into ``folder`` (written beside it, renamed when complete).

    ``split`` is a run's split (see ``am4cm.data.splits.split_run``). Band statistics come
    from the train folds only and are applied to val and test later.
    """
    folder = Path(folder)
    staging = folder.with_name(folder.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    metadata = read_metadata(root)
    train = metadata[metadata["ID_PATCH"].isin(split["train"])]
    mean, std, source = train_fold_stats(
        root,
        split["train_folds"],
        zip(train["ID_PATCH"], train["T"], strict=True),
        progress,
    )
    summary: dict[str, object] = {
        "run": split["run"],
        "sampling": asdict(config),
        "band_mean": mean.tolist(),
        "band_std": std.tolist(),
        "stats_source": source,
        "train_folds": split["train_folds"],
    }
    try:
        for name in CACHE_SPLITS:
            count = build_split(root, metadata, split[name], config, staging, name, progress)
            labels = np.load(staging / f"{name}_label.npy", mmap_mode="r")
            summary[f"{name}_pixels"] = count
            summary[f"{name}_class_counts"] = np.bincount(
                labels, minlength=facts.N_CLASSES
            ).tolist()
        (staging / "cache.json").write_text(json.dumps(summary, indent=2) + "\n")
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)
    return summary


@dataclass(frozen=True)
class PixelSplit:
    """Memory-mapped arrays of one cached split."""

    x: np.ndarray
    days: np.ndarray
    length: np.ndarray
    label: np.ndarray
    patch: np.ndarray
    row: np.ndarray
    col: np.ndarray

    def __len__(self) -> int:
        return len(self.label)


def open_split(folder: Path | str, split: str) -> PixelSplit:
    """Open a cached split memory-mapped (nothing is read until batches are gathered)."""
    folder = Path(folder)
    return PixelSplit(
        **{name: np.load(folder / f"{split}_{name}.npy", mmap_mode="r") for name in FIELDS}
    )


def read_cache_summary(folder: Path | str) -> dict[str, object]:
    """The ``cache.json`` of a cache folder: settings, counts and band statistics."""
    return json.loads((Path(folder) / "cache.json").read_text())
