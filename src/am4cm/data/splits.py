"""The official 5-run protocol applied to an index: train/val/test patch IDs of a run."""

from __future__ import annotations

import numpy as np
import pandas as pd

from am4cm.data import facts

SPLITS = ("train", "val", "test")


def split_run(index: pd.DataFrame, run: int) -> dict[str, object]:
    """Patch IDs of each split of an official run, with the folds they come from.

    Raises ValueError for an unknown run or a split with no patch (e.g. a fold missing from
    the data), since training or scoring on nothing would silently produce empty results.
    """
    if run not in facts.FOLD_PROTOCOL:
        raise ValueError(f"unknown run {run}: the official protocol has runs 1-5")
    protocol = facts.FOLD_PROTOCOL[run]
    split: dict[str, object] = {"run": run}
    for name in SPLITS:
        folds = list(protocol[name])
        ids = sorted(int(pid) for pid in index.loc[index["Fold"].isin(folds), "ID_PATCH"])
        if not ids:
            raise ValueError(f"run {run}: no patch in the {name} folds {folds}")
        split[f"{name}_folds"] = folds
        split[name] = ids
    return split


def spread_selection(patch_ids: list[int], count: int) -> list[int]:
    """``count`` IDs spread evenly over the sorted ``patch_ids`` (all of them when count is 0).

    Sorted PASTIS IDs run tile by tile, so an even spread samples every tile of the split.
    """
    ordered = sorted(patch_ids)
    if count <= 0 or count >= len(ordered):
        return ordered
    positions = np.linspace(0, len(ordered) - 1, count).round().astype(int)
    return [ordered[position] for position in positions]
