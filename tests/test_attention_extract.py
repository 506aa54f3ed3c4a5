"""Attention extraction over whole patches: alignment with dates and pixels, and the study glue."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from am4cm.attention.detection import DetectionSuite
from am4cm.attention.extract import extract_patch_attention, load_patch_attention
from am4cm.attention.study import example_dates, headline_across_runs
from am4cm.clouds import REF_CLEAR, REF_CLOUD, REF_THIN
from am4cm.clouds.masks import reference_mask
from am4cm.data.pastis import read_metadata, s2_path
from am4cm.data.splits import spread_selection
from am4cm.models.ltae import LTAEConfig, PixelLTAE

CONFIG = LTAEConfig(n_head=2, d_k=2, d_model=8, mlp=(8, 8), decoder=(8,))


def blue_averse_model() -> PixelLTAE:
    """A model whose every head gives almost no attention to dates with a bright blue band."""
    torch.manual_seed(0)
    model = PixelLTAE(CONFIG, band_mean=[0.0] * 10, band_std=[1000.0] * 10)
    with torch.no_grad():
        model.in_proj.weight.zero_()
        model.in_proj.bias.zero_()
        model.in_proj.weight[:4, 0] = 1.0  # head 0's value channels carry the blue band
        model.key.weight.zero_()
        model.key.bias.zero_()
        model.key.weight[:, :4] = -1.0  # keys: minus blue; the positional encoding,
        model.key.weight[:, 4:] = 1.0  # repeated in both channel groups, cancels out
        model.query.fill_(1.0)
    return model.eval()


@pytest.fixture
def patch(pastis_copy: Path) -> tuple[Path, int, int]:
    row = read_metadata(pastis_copy).iloc[0]
    return pastis_copy, int(row["ID_PATCH"]), int(row["T"])


def test_attention_is_aligned_with_dates_and_pixels(patch, tmp_path: Path) -> None:
    root, patch_id, n_dates = patch
    series = np.load(s2_path(root, patch_id))
    series[:, 0] = 300  # a dark, uniform blue everywhere ...
    date, row, col = 5, 7, 19
    series[date, 0, row, col] = 9000  # ... but one pixel is cloudy on one date
    np.save(s2_path(root, patch_id), series)

    extract_patch_attention(
        root, patch_id, blue_averse_model(), torch.device("cpu"), tmp_path / "a.npz"
    )
    archive = load_patch_attention(tmp_path / "a.npz")
    attention = archive["attention"].astype(np.float32)
    assert attention.shape == (2, n_dates, 32, 32)
    np.testing.assert_allclose(attention.sum(axis=1), 1.0, atol=1e-2)
    assert attention[:, date, row, col].max() < 1e-3
    others = np.delete(attention[:, :, row, col], date, axis=1)
    np.testing.assert_allclose(others, 1 / (n_dates - 1), rtol=2e-2)
    np.testing.assert_allclose(attention[:, :, row + 1, col], 1 / n_dates, rtol=2e-2)
    np.testing.assert_allclose(archive["mean_attention"], attention.mean(axis=0), atol=1e-3)
    assert archive["days"].shape == archive["dates"].shape == (n_dates,)
    assert archive["classes"].shape == archive["confidence"].shape == (32, 32)


def test_extraction_matches_the_model_on_single_pixels(patch, tmp_path: Path) -> None:
    root, patch_id, _ = patch
    torch.manual_seed(1)
    model = PixelLTAE(CONFIG, band_mean=[1000.0] * 10, band_std=[800.0] * 10).eval()
    extract_patch_attention(root, patch_id, model, torch.device("cpu"), tmp_path / "a.npz")
    archive = load_patch_attention(tmp_path / "a.npz")
    series = np.load(s2_path(root, patch_id))
    days = torch.as_tensor(read_metadata(root).iloc[0]["days"])[None]
    for row, col in [(0, 0), (3, 30), (31, 12)]:
        x = torch.from_numpy(series[:, :, row, col][None])
        logits, attention = model(x, days, torch.ones_like(days, dtype=torch.bool), True)
        np.testing.assert_allclose(
            archive["attention"][:, :, row, col], attention[:, 0].detach().numpy(), atol=1e-3
        )
        assert archive["classes"][row, col] == int(logits[0, :19].argmax())


def test_reference_masks_of_a_patch(patch) -> None:
    root, patch_id, n_dates = patch
    truth = reference_mask(root, patch_id, "truth")
    spectral = reference_mask(root, patch_id, "spectral")
    assert truth.shape == spectral.shape == (n_dates, 32, 32)
    with pytest.raises(ValueError, match="unknown cloud reference 'sky'"):
        reference_mask(root, patch_id, "sky")
    shutil.rmtree(root / "CLOUDS")
    with pytest.raises(ValueError, match="has no cloud truth"):
        reference_mask(root, patch_id, "truth")


def test_patch_selection_spreads_over_the_ids() -> None:
    assert spread_selection([5, 1, 3], 0) == [1, 3, 5]
    assert spread_selection(list(range(10)), 3) == [0, 4, 9]
    assert spread_selection([2, 1], 5) == [1, 2]


def test_example_dates_show_clear_cloudy_and_partial_dates() -> None:
    reference = np.full((6, 10, 10), REF_CLEAR, np.uint8)
    reference[1] = REF_CLOUD
    reference[3, :5] = REF_CLOUD
    reference[4, :2] = REF_THIN
    chosen = example_dates(reference, count=3)
    assert chosen == sorted(chosen) and 1 in chosen and 3 in chosen
    assert any(reference[k].max() == REF_CLEAR for k in chosen)


def test_per_patch_score_files_pool_to_the_same_table(tmp_path: Path) -> None:
    """Scoring patches in separate jobs and gathering them equals scoring them together."""
    rng = np.random.default_rng(0)
    together = DetectionSuite(n_bins=64, class_labels=["a", "b"])
    paths = []
    for k, split in enumerate(["val", "test", "test"]):
        reference = rng.integers(0, 4, (5, 6, 6)).astype(np.uint8)
        scores = {"mean": rng.random((5, 6, 6)) + (reference == REF_CLEAR)}
        labels = rng.integers(0, 2, (6, 6))
        together.add_patch(k, scores, {"truth": reference}, labels, split)
        alone = DetectionSuite(n_bins=64, class_labels=["a", "b"])
        alone.add_patch(k, scores, {"truth": reference}, labels, split)
        paths.append(tmp_path / f"{split}_{k}.npz")
        alone.save(paths[-1])
    pooled = DetectionSuite.load(paths)
    pd.testing.assert_frame_equal(pooled.table(n_boot=20), together.table(n_boot=20))
    with pytest.raises(ValueError, match="already loaded"):
        DetectionSuite.load([paths[0], paths[0]])


def test_headline_across_runs_adds_mean_and_spread() -> None:
    def table(auc: float) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "score": ["mean_x_T", "mean_x_T", "head_3"],
                "reference": ["truth"] * 3,
                "task": ["cloud", "cloud", "cloud"],
                "subset": ["all", "thin", "all"],
                "metric": ["auc", "auc", "auc"],
                "value": [auc, auc / 2, 0.99],
            }
        )

    summary = headline_across_runs({1: table(0.8), 2: table(0.6)}).set_index("run")
    assert set(summary["score"]) == {"mean_x_T"}
    assert summary.loc["1", "cloud_auc"] == 0.8 and summary.loc["2", "thin_cloud_auc"] == 0.3
    assert summary.loc["mean", "cloud_auc"] == pytest.approx(0.7)
    assert summary.loc["std", "cloud_auc"] == pytest.approx(np.std([0.8, 0.6], ddof=1))
    assert np.isnan(summary.loc["1", "shadow_auc"])
