"""Reference cloud masks of whole PASTIS patches, by reference name."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from am4cm.clouds import truth_to_reference
from am4cm.clouds.references import REFERENCE_DETECTORS
from am4cm.data.pastis import has_cloud_truth, open_s2, read_cloud_truth, read_metadata
from am4cm.io import atomic_path

TRUTH = "truth"


def reference_mask(root: Path | str, patch_id: int, reference: str) -> np.ndarray:
    """The (T, H, W) reference mask of a patch: the synthetic truth or a detector's output."""
    row = read_metadata(root).set_index("ID_PATCH").loc[patch_id]
    n_dates = int(row["T"])
    if reference == TRUTH:
        if not has_cloud_truth(root):
            raise ValueError(f"{root}: has no cloud truth (it exists for synthetic data only)")
        return truth_to_reference(read_cloud_truth(root, patch_id, n_dates))
    if reference not in REFERENCE_DETECTORS:
        raise ValueError(
            f"unknown cloud reference {reference!r}: use {TRUTH!r} or one of {list(REFERENCE_DETECTORS)}"
        )
    series = open_s2(root, patch_id, n_dates)
    return REFERENCE_DETECTORS[reference](series, np.asarray(row["days"]))


def write_reference_mask(root: Path | str, patch_id: int, reference: str, path: Path | str) -> None:
    """Compute a patch's reference mask and save it as uint8 ``.npy`` (atomically)."""
    mask = reference_mask(root, patch_id, reference).astype(np.uint8)
    with atomic_path(path) as tmp:
        np.save(tmp, mask)
