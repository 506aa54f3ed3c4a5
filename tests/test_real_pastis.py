"""Checks against a real PASTIS copy; they run only where PASTIS_PATH points to one."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from am4cm.data import facts
from am4cm.data.pastis import check_patch, open_s2, read_labels, read_metadata

PASTIS_PATH = os.environ.get("PASTIS_PATH", "")
pytestmark = pytest.mark.skipif(not PASTIS_PATH, reason="PASTIS_PATH is not set")


@pytest.fixture(scope="module")
def metadata():
    return read_metadata(Path(PASTIS_PATH))


def test_metadata_matches_the_released_fold_map(metadata) -> None:
    released = {pid: (fold, tile, n) for pid, fold, tile, n in facts.real_fold_map()}
    assert len(metadata) == len(released) == 2433
    for row in metadata.itertuples():
        assert released[row.ID_PATCH] == (row.Fold, row.TILE, row.T)


def test_first_patch_of_each_tile_reads(metadata) -> None:
    for _, row in metadata.groupby("TILE").head(1).iterrows():
        assert check_patch(PASTIS_PATH, row["ID_PATCH"], row["T"]) == facts.PATCH_SIZE
        series = open_s2(PASTIS_PATH, row["ID_PATCH"], row["T"])
        assert series.shape == (row["T"], facts.N_BANDS, 128, 128)
        labels = read_labels(PASTIS_PATH, row["ID_PATCH"])
        assert labels.max() <= facts.VOID_CLASS and np.any(labels > 0)
