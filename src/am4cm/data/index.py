"""Index a PASTIS root: one row per patch, from metadata, ``.npy`` headers and the small label maps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from am4cm.data import facts
from am4cm.data.pastis import check_patch, has_cloud_truth, read_labels, read_metadata, target_path


def class_count_columns() -> list[str]:
    """Names of the per-class pixel count columns of the index (``pixels_00`` .. ``pixels_19``)."""
    return [f"pixels_{class_id:02d}" for class_id in range(facts.N_CLASSES)]


def index_dataset(root: Path | str, progress: bool = True) -> pd.DataFrame:
    """Validate every patch of a PASTIS root and tabulate it.

    All headers are checked before any label map is read, so a broken file fails the run in
    seconds. S2 arrays are never read: only their headers and sizes. Columns: ID_PATCH, Fold,
    TILE, T, first_date, last_date, size, N_Parcel, Parcel_Cover, target_dtype, has_cloud_truth
    and one pixel count per class.
    """
    metadata = read_metadata(root)
    rows = metadata[["ID_PATCH", "Fold", "TILE", "T", "N_Parcel", "Parcel_Cover"]].copy()
    rows["first_date"] = [dates[0].isoformat() for dates in metadata["dates"]]
    rows["last_date"] = [dates[-1].isoformat() for dates in metadata["dates"]]
    patches = list(zip(metadata["ID_PATCH"], metadata["T"], strict=True))
    rows["size"] = [
        check_patch(root, patch_id, n_dates)
        for patch_id, n_dates in tqdm(patches, desc="check headers", disable=not progress)
    ]
    rows["target_dtype"] = [
        str(np.load(target_path(root, patch_id), mmap_mode="r").dtype) for patch_id, _ in patches
    ]
    rows["has_cloud_truth"] = has_cloud_truth(root)
    counts = np.stack(
        [
            np.bincount(read_labels(root, patch_id).ravel(), minlength=facts.N_CLASSES)
            for patch_id, _ in tqdm(patches, desc="count labels", disable=not progress)
        ]
    )
    return pd.concat(
        [rows, pd.DataFrame(counts, columns=class_count_columns(), index=rows.index)], axis=1
    )
