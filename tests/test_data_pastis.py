"""Reading PASTIS as released, and the clear errors for every kind of bad input."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from am4cm.data import facts
from am4cm.data.index import class_count_columns, index_dataset
from am4cm.data.normalisation import stats_from_data, stats_from_norm_file, train_fold_stats
from am4cm.data.pastis import (
    PastisFormatError,
    open_s2,
    read_cloud_truth,
    read_footprints,
    read_labels,
    read_metadata,
    read_parcels,
    s2_path,
    target_path,
)
from am4cm.data.splits import split_run


def edit_metadata(root: Path, edit) -> None:
    """Apply ``edit(properties)`` to the first feature of metadata.geojson."""
    path = root / "metadata.geojson"
    collection = json.loads(path.read_text())
    edit(collection["features"][0]["properties"])
    path.write_text(json.dumps(collection))


def first_patch(root: Path) -> tuple[int, int]:
    row = read_metadata(root).iloc[0]
    return int(row["ID_PATCH"]), int(row["T"])


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(path.relative_to(root)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in sorted(root.rglob("*"))
    }


def test_metadata_table(tiny_pastis: Path) -> None:
    table = read_metadata(tiny_pastis)
    assert sorted(table["Fold"]) == [1, 2, 3, 4, 5]
    calendars = facts.tile_calendars()
    for _, row in table.iterrows():
        assert row["dates"] == calendars[row["TILE"]]
        assert row["T"] == len(row["dates"]) == len(row["days"])
        assert row["days"][0] == (row["dates"][0] - facts.REFERENCE_DATE).days
        assert list(row["days"]) == sorted(row["days"])


def test_footprints_are_squares_in_lambert_93(tiny_pastis: Path) -> None:
    footprints = read_footprints(tiny_pastis)
    assert footprints.crs.to_epsg() == 2154
    assert list(footprints["ID_PATCH"]) == list(read_metadata(tiny_pastis)["ID_PATCH"])
    np.testing.assert_allclose(footprints.area, (32 * 10) ** 2, rtol=1e-6)


def test_footprints_in_another_crs_are_rejected(pastis_copy: Path) -> None:
    path = pastis_copy / "metadata.geojson"
    collection = json.loads(path.read_text())
    collection["crs"]["properties"]["name"] = "urn:ogc:def:crs:EPSG::4326"
    path.write_text(json.dumps(collection))
    with pytest.raises(PastisFormatError, match=r"metadata\.geojson: has CRS .*expected EPSG:2154"):
        read_footprints(pastis_copy)


def test_dates_as_json_string_are_accepted(pastis_copy: Path) -> None:
    expected = read_metadata(pastis_copy).iloc[0]["dates"]
    edit_metadata(pastis_copy, lambda p: p.update({"dates-S2": json.dumps(p["dates-S2"])}))
    assert read_metadata(pastis_copy).iloc[0]["dates"] == expected


def test_s2_is_memory_mapped_int16(tiny_pastis: Path) -> None:
    patch_id, n_dates = first_patch(tiny_pastis)
    series = open_s2(tiny_pastis, patch_id, n_dates)
    assert isinstance(series, np.memmap)
    assert series.dtype == np.int16
    assert series.shape == (n_dates, facts.N_BANDS, 32, 32)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int16])
def test_labels_from_channel_zero_whatever_the_integer_type(pastis_copy: Path, dtype) -> None:
    patch_id, _ = first_patch(pastis_copy)
    path = target_path(pastis_copy, patch_id)
    target = np.load(path)
    target[1:] = 0
    np.save(path, target.astype(dtype))
    labels = read_labels(pastis_copy, patch_id)
    assert labels.dtype == np.uint8
    np.testing.assert_array_equal(labels, target[0])


def test_parcels_and_cloud_truth(tiny_pastis: Path) -> None:
    patch_id, n_dates = first_patch(tiny_pastis)
    parcels = read_parcels(tiny_pastis, patch_id)
    assert parcels.dtype == np.int32 and parcels.shape == (32, 32) and parcels.max() > 0
    truth = read_cloud_truth(tiny_pastis, patch_id, n_dates)
    assert truth.shape == (n_dates, 32, 32) and truth.max() <= 3


def test_index_has_one_row_per_patch_with_class_counts(tiny_pastis: Path) -> None:
    index = index_dataset(tiny_pastis, progress=False)
    assert len(index) == 5
    assert index[class_count_columns()].sum(axis=1).eq(32 * 32).all()
    assert set(index["TILE"]) <= set(facts.TILES)
    assert index["has_cloud_truth"].all()
    assert (pd.to_datetime(index["first_date"]) < pd.to_datetime(index["last_date"])).all()


def test_index_reads_no_s2_array(tiny_pastis: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Indexing must only read headers: loading an S2 array would be a whole-dataset read."""
    real_load = np.load

    def guarded_load(path, *args, **kwargs):
        assert "DATA_S2" not in str(path), f"indexing read {path}"
        return real_load(path, *args, **kwargs)

    monkeypatch.setattr(np, "load", guarded_load)
    assert len(index_dataset(tiny_pastis, progress=False)) == 5


def test_splits_follow_the_official_protocol(tiny_pastis: Path) -> None:
    index = index_dataset(tiny_pastis, progress=False)
    folds = dict(zip(index["ID_PATCH"], index["Fold"], strict=True))
    split = split_run(index, 1)
    assert {folds[pid] for pid in split["train"]} == {1, 2, 3}
    assert {folds[pid] for pid in split["val"]} == {4}
    assert {folds[pid] for pid in split["test"]} == {5}
    split = split_run(index, 3)
    assert split["train_folds"] == [3, 4, 5] and split["test_folds"] == [2]
    with pytest.raises(ValueError, match="unknown run 6"):
        split_run(index, 6)
    with pytest.raises(ValueError, match="no patch in the test folds"):
        split_run(index[index["Fold"] != 5], 1)


def test_norm_stats_from_file_average_the_train_folds(tiny_pastis: Path) -> None:
    mean, std = stats_from_norm_file(tiny_pastis, [1, 2, 3])
    table = json.loads((tiny_pastis / "NORM_S2_patch.json").read_text())
    expected = np.mean([table[f"Fold_{fold}"]["mean"] for fold in (1, 2, 3)], axis=0)
    np.testing.assert_allclose(mean, expected)
    assert mean.shape == std.shape == (10,) and (std > 0).all()


def test_norm_stats_computed_when_the_file_is_absent(pastis_copy: Path) -> None:
    (pastis_copy / "NORM_S2_patch.json").unlink()
    table = read_metadata(pastis_copy)
    train = table[table["Fold"].isin([1, 2, 3])]
    patches = list(zip(train["ID_PATCH"], train["T"], strict=True))
    mean, std, source = train_fold_stats(pastis_copy, [1, 2, 3], patches, progress=False)
    assert source == "computed"
    stacked = np.concatenate(
        [
            np.load(s2_path(pastis_copy, pid)).transpose(1, 0, 2, 3).reshape(10, -1)
            for pid, _ in patches
        ],
        axis=1,
    ).astype(np.float64)
    np.testing.assert_allclose(mean, stacked.mean(axis=1), rtol=1e-9)
    np.testing.assert_allclose(std, stacked.std(axis=1), rtol=1e-6)
    np.testing.assert_allclose(stats_from_data(pastis_copy, patches, progress=False)[0], mean)


def test_not_a_pastis_root(tmp_path: Path) -> None:
    with pytest.raises(PastisFormatError, match=r"not a PASTIS root: missing metadata\.geojson"):
        read_metadata(tmp_path)
    with pytest.raises(PastisFormatError, match="is not a folder"):
        read_metadata(tmp_path / "nowhere")


def test_missing_s2_file(pastis_copy: Path) -> None:
    patch_id, _ = first_patch(pastis_copy)
    s2_path(pastis_copy, patch_id).unlink()
    with pytest.raises(PastisFormatError, match=rf"S2_{patch_id}\.npy: is missing"):
        index_dataset(pastis_copy, progress=False)


def test_truncated_s2_file(pastis_copy: Path) -> None:
    patch_id, _ = first_patch(pastis_copy)
    path = s2_path(pastis_copy, patch_id)
    os.truncate(path, path.stat().st_size - 100)
    with pytest.raises(PastisFormatError, match=rf"S2_{patch_id}\.npy: is truncated"):
        index_dataset(pastis_copy, progress=False)


def test_corrupt_npy_file(pastis_copy: Path) -> None:
    patch_id, _ = first_patch(pastis_copy)
    target_path(pastis_copy, patch_id).write_bytes(b"not numpy")
    with pytest.raises(PastisFormatError, match=rf"TARGET_{patch_id}\.npy: is not a valid \.npy"):
        index_dataset(pastis_copy, progress=False)


def test_t_disagreeing_with_dates(pastis_copy: Path) -> None:
    patch_id, n_dates = first_patch(pastis_copy)
    edit_metadata(pastis_copy, lambda p: p["dates-S2"].pop(str(n_dates - 1)))
    with pytest.raises(PastisFormatError, match=rf"S2_{patch_id}\.npy: has T={n_dates} dates"):
        index_dataset(pastis_copy, progress=False)


def test_wrong_band_count(pastis_copy: Path) -> None:
    patch_id, _ = first_patch(pastis_copy)
    path = s2_path(pastis_copy, patch_id)
    np.save(path, np.load(path)[:, :9])
    with pytest.raises(PastisFormatError, match="has 9 bands, expected 10"):
        index_dataset(pastis_copy, progress=False)


def test_labels_outside_range(pastis_copy: Path) -> None:
    patch_id, _ = first_patch(pastis_copy)
    path = target_path(pastis_copy, patch_id)
    target = np.load(path)
    target[0, 0, 0] = 23
    np.save(path, target)
    with pytest.raises(PastisFormatError, match=rf"TARGET_{patch_id}\.npy: holds labels .*23"):
        index_dataset(pastis_copy, progress=False)


def test_unknown_fold(pastis_copy: Path) -> None:
    edit_metadata(pastis_copy, lambda p: p.update({"Fold": 7}))
    with pytest.raises(PastisFormatError, match=r"metadata\.geojson: patch .* unknown fold 7"):
        read_metadata(pastis_copy)


def test_metadata_missing_columns(pastis_copy: Path) -> None:
    edit_metadata(pastis_copy, lambda p: p.pop("TILE"))
    with pytest.raises(
        PastisFormatError, match=r"metadata\.geojson: feature 0 lacks the properties TILE"
    ):
        read_metadata(pastis_copy)


def test_nothing_is_written_into_a_read_only_pastis(pastis_copy: Path) -> None:
    """Reading, indexing and statistics leave the input folder byte-for-byte untouched."""
    for path in [pastis_copy, *pastis_copy.rglob("*")]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    before = snapshot(pastis_copy)
    table = read_metadata(pastis_copy)
    index_dataset(pastis_copy, progress=False)
    patches = list(zip(table["ID_PATCH"], table["T"], strict=True))
    stats_from_data(pastis_copy, patches, progress=False)
    for patch_id, n_dates in patches:
        np.asarray(open_s2(pastis_copy, patch_id, n_dates)[0])
        read_labels(pastis_copy, patch_id)
    assert snapshot(pastis_copy) == before
