"""Pixel cache, batches and the training loop: shapes, seeds, selection and resuming."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from am4cm.data import facts
from am4cm.data.index import index_dataset
from am4cm.data.normalisation import stats_from_norm_file
from am4cm.data.pastis import read_labels, read_metadata, s2_path
from am4cm.data.splits import split_run
from am4cm.models.ltae import LTAEConfig
from am4cm.training.batches import batch_indices, iterate_batches
from am4cm.training.cache import SamplingConfig, build_cache, open_split, sample_pixels
from am4cm.training.train import TrainConfig, learning_rate_factor, load_model, train

SMALL_MODEL = LTAEConfig(n_head=4, d_k=4, d_model=32, mlp=(32, 16), decoder=(16,))
FAST = TrainConfig(epochs=3, batch_size=64, patience=5, model=SMALL_MODEL)


@pytest.fixture(scope="module")
def cache(tiny_pastis: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    split = split_run(index_dataset(tiny_pastis, progress=False), 1)
    folder = tmp_path_factory.mktemp("cache") / "run1"
    build_cache(tiny_pastis, split, SamplingConfig(pixels_per_patch=200), folder, progress=False)
    return folder


def test_sampling_excludes_void_and_balances_classes() -> None:
    labels = np.zeros((100, 100), np.uint8)
    labels[:10] = 3
    labels[-5:] = facts.VOID_CLASS
    rng = np.random.default_rng(0)
    uniform = labels[sample_pixels(labels, SamplingConfig(1000, class_balance=0.0), rng)]
    balanced = labels[sample_pixels(labels, SamplingConfig(1000, class_balance=1.0), rng)]
    assert len(uniform) == len(balanced) == 1000
    assert facts.VOID_CLASS not in uniform and facts.VOID_CLASS not in balanced
    assert 0.05 < np.mean(uniform == 3) < 0.16
    assert 0.4 < np.mean(balanced == 3) < 0.6
    rows, _ = sample_pixels(labels, SamplingConfig(10**6), rng)
    assert len(rows) == np.sum(labels != facts.VOID_CLASS)


def test_cache_holds_the_true_series_of_each_pixel(cache: Path, tiny_pastis: Path) -> None:
    summary = json.loads((cache / "cache.json").read_text())
    train_split = open_split(cache, "train")
    metadata = read_metadata(tiny_pastis).set_index("ID_PATCH")
    assert summary["train_pixels"] == len(train_split) == 3 * 200
    assert set(np.unique(train_split.patch)) == set(metadata.index[metadata["Fold"] <= 3])
    for i in (0, len(train_split) // 2, len(train_split) - 1):
        patch_id, row, col = int(train_split.patch[i]), train_split.row[i], train_split.col[i]
        n_dates = int(metadata.loc[patch_id, "T"])
        series = np.load(s2_path(tiny_pastis, patch_id))[:, :, row, col]
        assert train_split.length[i] == n_dates
        np.testing.assert_array_equal(train_split.x[i, :n_dates], series)
        assert not train_split.x[i, n_dates:].any() and not train_split.days[i, n_dates:].any()
        np.testing.assert_array_equal(train_split.days[i, :n_dates], metadata.loc[patch_id, "days"])
        assert train_split.label[i] == read_labels(tiny_pastis, patch_id)[row, col]
    mean, std = stats_from_norm_file(tiny_pastis, [1, 2, 3])
    np.testing.assert_allclose(summary["band_mean"], mean)
    np.testing.assert_allclose(summary["band_std"], std)


def test_a_failed_cache_build_leaves_nothing_complete(tiny_pastis: Path, tmp_path: Path) -> None:
    split = split_run(index_dataset(tiny_pastis, progress=False), 1)
    split["val"] = [999999]
    with pytest.raises(ValueError, match=r"val: patches \[999999\] are not in metadata"):
        build_cache(tiny_pastis, split, SamplingConfig(50), tmp_path / "run1", progress=False)
    assert list(tmp_path.iterdir()) == []


def test_batches_cover_every_pixel_once_with_one_length_each(cache: Path) -> None:
    split = open_split(cache, "train")
    batches = batch_indices(np.asarray(split.length), 50, np.random.default_rng(1))
    assert sorted(np.concatenate(batches).tolist()) == list(range(len(split)))
    assert all(len(np.unique(split.length[b])) == 1 for b in batches)
    again = batch_indices(np.asarray(split.length), 50, np.random.default_rng(1))
    assert all(np.array_equal(a, b) for a, b in zip(batches, again, strict=True))
    for batch in iterate_batches(split, 50):
        assert batch.mask.all() and batch.x.shape[1] == batch.days.shape[1]


def test_learning_rate_warms_up_then_decays() -> None:
    factors = [learning_rate_factor(step, 10, 100) for step in range(100)]
    assert factors[0] == pytest.approx(0.1) and factors[9] == pytest.approx(1.0)
    assert factors[10] == pytest.approx(1.0) and factors[-1] < 0.01
    assert all(a >= b for a, b in itertools.pairwise(factors[10:]))


def run_training(cache: Path, folder: Path, config: TrainConfig = FAST, **kwargs) -> pd.DataFrame:
    return train(
        cache,
        folder / "model.pt",
        folder / "history.csv",
        folder / "resume_state.pt",
        config,
        progress=False,
        **kwargs,
    )


def test_training_writes_a_self_contained_checkpoint(cache: Path, tmp_path: Path) -> None:
    history = run_training(cache, tmp_path)
    assert list(history["epoch"]) == [1, 2, 3]
    assert {"train_loss", "val_loss", "val_oa", "val_miou", "learning_rate", "seconds"} <= set(
        history.columns
    )
    payload = torch.load(tmp_path / "model.pt", weights_only=True)
    assert payload["class_names"] == facts.class_names()
    assert payload["selected_epoch"] == history.loc[history["val_miou"].idxmax(), "epoch"]
    assert LTAEConfig(**payload["model_config"]) == SMALL_MODEL
    model = load_model(tmp_path / "model.pt")
    np.testing.assert_allclose(model.band_mean.numpy(), payload["band_mean"], rtol=1e-6)
    assert not (tmp_path / "resume_state.pt").exists()
    assert pd.read_csv(tmp_path / "history.csv").shape[0] == 3


def test_same_config_gives_the_same_checkpoint(cache: Path, tmp_path: Path) -> None:
    first = run_training(cache, tmp_path / "a")
    second = run_training(cache, tmp_path / "b")
    pd.testing.assert_frame_equal(
        first.drop(columns=["seconds", "train_pixels_per_second"]),
        second.drop(columns=["seconds", "train_pixels_per_second"]),
    )
    weights_a = torch.load(tmp_path / "a/model.pt", weights_only=True)["state_dict"]
    weights_b = torch.load(tmp_path / "b/model.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(weights_a[name], weights_b[name]) for name in weights_a)


def test_killed_training_resumes_to_the_same_result(cache: Path, tmp_path: Path) -> None:
    config = replace(FAST, epochs=4)
    run_training(cache, tmp_path / "whole", config)

    def kill_after_epoch_two(epoch: int) -> None:
        if epoch == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_training(cache, tmp_path / "killed", config, on_epoch_end=kill_after_epoch_two)
    assert (tmp_path / "killed/resume_state.pt").exists()
    assert not (tmp_path / "killed/model.pt").exists()
    resumed = run_training(cache, tmp_path / "killed", config)
    assert list(resumed["epoch"]) == [1, 2, 3, 4]
    whole = torch.load(tmp_path / "whole/model.pt", weights_only=True)["state_dict"]
    killed = torch.load(tmp_path / "killed/model.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(whole[name], killed[name]) for name in whole)


def test_a_resume_state_from_other_settings_is_ignored(cache: Path, tmp_path: Path) -> None:
    def stop(epoch: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_training(cache, tmp_path, replace(FAST, learning_rate=0.01), on_epoch_end=stop)
    history = run_training(cache, tmp_path)
    assert list(history["epoch"]) == [1, 2, 3]


def test_early_stopping_on_val_miou(cache: Path, tmp_path: Path) -> None:
    history = run_training(
        cache, tmp_path, replace(FAST, epochs=30, patience=1, learning_rate=1e-9)
    )
    assert len(history) < 30
