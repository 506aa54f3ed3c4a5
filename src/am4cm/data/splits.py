"""The official 5-run protocol applied to an index: train/val/test patch IDs of a run."""

from __future__ import annotations

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
