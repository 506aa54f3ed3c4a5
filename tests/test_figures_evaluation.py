"""The crop-classification figures write PNGs; the RGB helpers pick and stretch the right data."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from am4cm.data.facts import N_BANDS, N_CLASSES, VOID_CLASS
from am4cm.evaluation import ConfusionAccumulator, per_class_table
from am4cm.figures.evaluation import (
    MapSample,
    clearest_date,
    plot_classification_maps,
    plot_confusion,
    plot_per_class_f1,
    rgb_composite,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert path.stat().st_size > 5000
    assert [p.name for p in path.parent.iterdir()] == [path.name], "temporary file left behind"


def random_matrix(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, N_CLASSES, 5000)
    truth[truth == 13] = 0
    pred = np.where(rng.random(truth.size) < 0.7, truth, rng.integers(0, N_CLASSES, truth.size))
    accumulator = ConfusionAccumulator()
    accumulator.add(truth, pred)
    return accumulator.matrix


def test_plot_confusion_writes_png(tmp_path: Path) -> None:
    path = tmp_path / "confusion.png"
    plot_confusion(random_matrix(), path, "test confusion")
    assert_png(path)


def test_plot_per_class_f1_writes_png_with_absent_classes(tmp_path: Path) -> None:
    matrix = random_matrix()
    matrix[:, 5] = 0
    matrix[5, :] = 0
    table = per_class_table(matrix)
    assert table["f1"].isna().sum() >= 1
    path = tmp_path / "sub" / "f1.png"
    plot_per_class_f1(table, path, "per-class F1")
    assert_png(path)


def test_plot_classification_maps_writes_png(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    samples = []
    for patch_id in (10001, 10002):
        truth = np.repeat(np.repeat(rng.integers(0, N_CLASSES, (4, 4)), 6, 0), 6, 1)
        truth[:6, :6] = VOID_CLASS
        prediction = np.where(rng.random(truth.shape) < 0.8, truth, rng.integers(0, 20, (24, 24)))
        rgb = rng.random((24, 24, 3))
        samples.append(MapSample(patch_id, rgb, dt.date(2019, 5, 14), truth, prediction))
    path = tmp_path / "maps.png"
    plot_classification_maps(samples, path, "truth vs prediction")
    assert_png(path)
    with pytest.raises(ValueError):
        plot_classification_maps([], tmp_path / "none.png", "nothing")


def test_rgb_composite_uses_b4_b3_b2_and_stretches_to_unit_range() -> None:
    rng = np.random.default_rng(4)
    frame = rng.integers(200, 400, size=(N_BANDS, 16, 16)).astype(np.int16)
    frame[2] += 2000  # B4 (red) much brighter than B3 and B2
    frame[7] = 9000  # a non-RGB band: must not matter
    rgb = rgb_composite(frame)
    assert rgb.shape == (16, 16, 3)
    assert rgb.min() >= 0 and rgb.max() <= 1
    assert rgb[..., 0].mean() > 0.9
    assert rgb[..., 1].mean() < 0.1 and rgb[..., 2].mean() < 0.1
    assert (rgb_composite(np.full((N_BANDS, 4, 4), 500, dtype=np.int16)) == 0).all()
    with pytest.raises(ValueError):
        rgb_composite(frame[:3])


def test_clearest_date_picks_lowest_median_blue_and_skips_empty_frames() -> None:
    rng = np.random.default_rng(5)
    series = rng.integers(300, 600, size=(5, N_BANDS, 8, 8)).astype(np.int16)
    series[:, 0] += np.array([3000, 2000, 100, 2500, 900], dtype=np.int16)[:, None, None]
    series[:, 2] += np.array([0, 0, 5000, 0, 0], dtype=np.int16)[:, None, None]
    assert clearest_date(series) == 2
    series[1] = 0
    assert clearest_date(series) == 2
    with pytest.raises(ValueError):
        clearest_date(np.zeros((3, N_BANDS, 4, 4), dtype=np.int16))
