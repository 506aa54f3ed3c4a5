"""Reference cloud detectors: crafted series, the truth mapping, and a real labelled scene."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from am4cm.clouds import (
    REF_CLEAR,
    REF_CLOUD,
    REF_SHADOW,
    REF_THIN,
    collapse_thin,
    references,
    truth_to_reference,
)
from am4cm.clouds import csmask as csmask_module
from am4cm.clouds.csmask import CSMASK_CHANNELS, csmask_available, csmask_frame, csmask_mask
from am4cm.clouds.multitemporal import (
    MultiTemporalParams,
    blue_threshold,
    multitemporal_mask,
)
from am4cm.clouds.references import (
    REFERENCE_DETECTORS,
    agreement,
    available_references,
    load_labelled_scene,
    scene_masks,
)
from am4cm.clouds.spectral import (
    as_bands,
    braaten_cohen_yang,
    dark_shadow,
    fmask_potential_cloud,
    fmask_water,
    hot_test,
    pastis_bands,
    spectral_codes,
    spectral_mask,
)
from am4cm.data.facts import BANDS, CLOUD_TRUTH_CODES, REFLECTANCE_SCALE

SCENE = Path(
    os.environ.get(
        "AM4CM_CLOUD_SCENE",
        Path(__file__).resolve().parents[2] / "shared/cloud-reference/sentinel2_l1c_labelled.npz",
    )
)
needs_scene = pytest.mark.skipif(not SCENE.is_file(), reason=f"labelled scene not found: {SCENE}")

VEGETATION = dict(
    B2=0.03, B3=0.06, B4=0.04, B5=0.1, B6=0.25, B7=0.3, B8=0.35, B8A=0.36, B11=0.2, B12=0.1
)
CLOUD = dict(VEGETATION, B2=0.5, B3=0.5, B4=0.5, B8=0.55, B8A=0.55, B11=0.45, B12=0.35)
HAZE = dict(VEGETATION, B2=0.2, B3=0.16, B4=0.17, B8=0.4, B11=0.25, B12=0.15)
SHADOW = dict(VEGETATION, B2=0.015, B3=0.03, B4=0.02, B8=0.12, B8A=0.12, B11=0.07, B12=0.04)
WATER = dict(VEGETATION, B2=0.05, B3=0.04, B4=0.03, B8=0.02, B8A=0.02, B11=0.01, B12=0.01)
SOIL = dict(VEGETATION, B2=0.12, B3=0.16, B4=0.22, B8=0.28, B11=0.38, B12=0.3)


def stack(*dates: dict[str, float] | list[dict[str, float]], size: int = 1) -> np.ndarray:
    """PASTIS int16 stack (T, 10, size, size); a date is one spectrum or one per pixel (row-major)."""
    out = np.empty((len(dates), len(BANDS), size, size), dtype=np.int16)
    for t, date in enumerate(dates):
        pixels = date if isinstance(date, list) else [date] * size * size
        values = np.array([[pixel[band] for band in BANDS] for pixel in pixels])
        out[t] = np.round(values.T.reshape(len(BANDS), size, size) * REFLECTANCE_SCALE)
    return out


def row(*spectra: dict[str, float]) -> np.ndarray:
    """One PASTIS frame (10, 1, n) int16 holding one pixel per spectrum."""
    values = np.array([[spectrum[band] for band in BANDS] for spectrum in spectra])
    return np.round(values.T[:, None, :] * REFLECTANCE_SCALE).astype(np.int16)


def shifted(spectrum: dict[str, float], **rise: float) -> dict[str, float]:
    return {band: value + rise.get(band, 0.0) for band, value in spectrum.items()}


# --- common convention ---------------------------------------------------------------


def test_truth_to_reference_maps_every_synthetic_code():
    truth = np.array([[0, 1], [2, 3]], dtype=np.uint8)
    assert CLOUD_TRUTH_CODES == {"clear": 0, "cloud": 1, "thin_cloud": 2, "shadow": 3}
    mapped = truth_to_reference(truth)
    assert mapped.dtype == np.uint8
    np.testing.assert_array_equal(mapped, [[REF_CLEAR, REF_CLOUD], [REF_THIN, REF_SHADOW]])
    np.testing.assert_array_equal(collapse_thin(mapped), [[0, 1], [1, 2]])


def test_truth_to_reference_rejects_unknown_codes():
    with pytest.raises(ValueError, match="unknown"):
        truth_to_reference(np.array([0, 4]))


# --- single-date rules ----------------------------------------------------------------


def test_rules_on_typical_spectra():
    bands = pastis_bands(row(CLOUD, HAZE, VEGETATION, SOIL, WATER, SHADOW))
    np.testing.assert_array_equal(braaten_cohen_yang(bands)[0], [1, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(hot_test(bands)[0], [1, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(fmask_potential_cloud(bands)[0], [1, 1, 0, 0, 0, 0])
    np.testing.assert_array_equal(fmask_water(bands)[0], [0, 0, 0, 0, 1, 0])
    np.testing.assert_array_equal(dark_shadow(bands)[0], [0, 0, 0, 0, 0, 1])
    expected = [REF_CLOUD, REF_THIN, REF_CLEAR, REF_CLEAR, REF_CLEAR, REF_SHADOW]
    np.testing.assert_array_equal(spectral_codes(bands)[0], expected)


def test_bcy_swir_condition_is_optional():
    bands = pastis_bands(stack(dict(CLOUD, B11=0.1))[0])
    assert not braaten_cohen_yang(bands).any()
    assert braaten_cohen_yang(bands, swir=False).all()


def test_rules_use_only_bands_present_and_name_missing_ones():
    six = ("B2", "B3", "B4", "B8", "B11", "B12")
    img = np.array([[[CLOUD[b] for b in six], [VEGETATION[b] for b in six]]], dtype=np.float32)
    codes = spectral_codes(as_bands(img, six, axis=-1, scale=1.0))
    np.testing.assert_array_equal(codes, [[REF_CLOUD, REF_CLEAR]])
    with pytest.raises(KeyError, match="B12"):
        spectral_codes(as_bands(img[..., :5], six[:5], axis=-1, scale=1.0))
    with pytest.raises(ValueError, match="bands"):
        as_bands(img, six[:5], axis=-1, scale=1.0)


def test_spectral_mask_runs_date_by_date_on_zeros_and_negatives():
    s2 = stack(VEGETATION, CLOUD, SHADOW, size=3)
    s2[0, :, 0, 0] = 0
    s2[0, :, 1, 1] = -500
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        mask = spectral_mask(s2, np.arange(3))
    assert mask.shape == (3, 3, 3) and mask.dtype == np.uint8
    assert (mask[0] == REF_CLEAR).all()
    assert (mask[1] == REF_CLOUD).all() and (mask[2] == REF_SHADOW).all()


# --- multi-temporal detector ------------------------------------------------------------


def test_blue_threshold_grows_with_the_gap_and_is_capped():
    np.testing.assert_allclose(blue_threshold(np.array([0, 15, 30, 90])), [0.03, 0.045, 0.06, 0.06])


def test_blue_jump_is_flagged_at_its_date_only():
    k = 4
    others = [VEGETATION] * 3
    dates = [[VEGETATION] * 4 for _ in range(8)]
    dates[k] = [shifted(VEGETATION, B2=0.05, B3=0.04, B4=0.04), *others]
    mask = multitemporal_mask(stack(*dates, size=2), np.arange(8) * 5)
    assert not spectral_codes(pastis_bands(stack(*dates, size=2)[k])).any()
    expected = np.zeros(8, dtype=np.uint8)
    expected[k] = REF_THIN
    np.testing.assert_array_equal(mask[:, 0, 0], expected)
    assert not mask.reshape(8, -1)[:, 1:].any()


def test_thick_cloud_is_cloud_and_persistent_clouds_stay_flagged():
    days = np.arange(6) * 5
    mask = multitemporal_mask(stack(VEGETATION, VEGETATION, CLOUD, CLOUD, VEGETATION, CLOUD), days)
    np.testing.assert_array_equal(mask[:, 0, 0], [0, 0, 1, 1, 0, 1])


def test_first_date_falls_back_to_single_date_rules():
    haze = shifted(VEGETATION, B2=0.05, B3=0.04, B4=0.04)
    mask = multitemporal_mask(stack(CLOUD, VEGETATION, haze), np.array([0, 5, 10]))
    np.testing.assert_array_equal(mask[:, 0, 0], [REF_CLOUD, REF_CLEAR, REF_THIN])
    mask = multitemporal_mask(stack(haze, VEGETATION), np.array([0, 5]))
    np.testing.assert_array_equal(mask[:, 0, 0], [REF_CLEAR, REF_CLEAR])
    mask = multitemporal_mask(stack(CLOUD, haze), np.array([0, 5]))
    np.testing.assert_array_equal(mask[:, 0, 0], [REF_CLOUD, REF_CLEAR])


def test_threshold_depends_on_the_gap_since_the_last_clear_date():
    rise = shifted(VEGETATION, B2=0.045, B3=0.045, B4=0.045)
    near = multitemporal_mask(stack(VEGETATION, rise), np.array([0, 5]))
    far = multitemporal_mask(stack(VEGETATION, rise), np.array([0, 25]))
    assert near[1, 0, 0] == REF_THIN
    assert far[1, 0, 0] == REF_CLEAR


def test_stale_reference_hands_over_to_single_date_rules():
    rise = shifted(VEGETATION, B2=0.07, B3=0.07, B4=0.07)
    params = MultiTemporalParams(max_reference_age=20)
    assert multitemporal_mask(stack(VEGETATION, rise), np.array([0, 15]), params)[1, 0, 0]
    assert not multitemporal_mask(stack(VEGETATION, rise), np.array([0, 30]), params)[1, 0, 0]


def test_smooth_season_raises_no_flag():
    days = np.arange(0, 400, 10)
    phase = np.sin(np.pi * days / days[-1])
    season = [
        dict(
            VEGETATION,
            B2=0.03 + 0.002 * np.cos(d / 40),
            B3=0.05 + 0.03 * p,
            B4=0.09 - 0.06 * p,
            B8=0.2 + 0.3 * p,
            B8A=0.2 + 0.3 * p,
            B11=0.3 - 0.1 * p,
            B12=0.2 - 0.1 * p,
        )
        for d, p in zip(days, phase, strict=True)
    ]
    assert not multitemporal_mask(stack(*season), days).any()


def test_red_rising_faster_than_blue_is_surface_change_not_cloud():
    ploughed = shifted(VEGETATION, B2=0.06, B3=0.08, B4=0.12, B8=-0.1, B11=0.15)
    series = stack(VEGETATION, ploughed, ploughed)
    assert not multitemporal_mask(series, np.array([0, 5, 10])).any()
    loose = MultiTemporalParams(red_ratio_max=3.0)
    assert multitemporal_mask(series, np.array([0, 5, 10]), loose)[1, 0, 0] == REF_THIN


def test_nir_swir_drop_between_clear_dates_is_shadow():
    dates = [VEGETATION, VEGETATION, VEGETATION, SHADOW, VEGETATION, VEGETATION]
    mask = multitemporal_mask(stack(*dates), np.arange(6) * 5)
    np.testing.assert_array_equal(mask[:, 0, 0], [0, 0, 0, REF_SHADOW, 0, 0])
    last = multitemporal_mask(stack(VEGETATION, VEGETATION, SHADOW), np.array([0, 5, 10]))
    np.testing.assert_array_equal(last[:, 0, 0], [0, 0, REF_SHADOW])
    before_clouds = multitemporal_mask(stack(VEGETATION, SHADOW, CLOUD), np.array([0, 5, 10]))
    np.testing.assert_array_equal(before_clouds[:, 0, 0], [0, REF_SHADOW, REF_CLOUD])


def test_lasting_drop_is_not_shadow_even_if_dark():
    dates = [VEGETATION, VEGETATION, SHADOW, SHADOW, SHADOW]
    assert dark_shadow(pastis_bands(stack(SHADOW)[0])).all()
    assert not multitemporal_mask(stack(*dates), np.arange(5) * 5).any()


def test_cloudy_dates_are_not_shadow_references():
    dates = [VEGETATION, CLOUD, SHADOW, CLOUD, VEGETATION]
    mask = multitemporal_mask(stack(*dates), np.arange(5) * 5)
    np.testing.assert_array_equal(mask[:, 0, 0], [0, REF_CLOUD, REF_SHADOW, REF_CLOUD, 0])


def test_dilation_grows_clouds():
    centre = [VEGETATION] * 25
    centre[12] = CLOUD
    series = stack(VEGETATION, centre, VEGETATION, size=5)
    plain = multitemporal_mask(series, np.array([0, 5, 10]))
    grown = multitemporal_mask(series, np.array([0, 5, 10]), MultiTemporalParams(dilation=1))
    assert (plain[1] != 0).sum() == 1
    assert (grown[1] == REF_CLOUD).sum() == 5 and grown[1, 2, 2] == REF_CLOUD


def test_multitemporal_reads_memmaps_and_checks_days(tmp_path):
    series = stack(VEGETATION, CLOUD, SHADOW, VEGETATION, size=2)
    np.save(tmp_path / "s2.npy", series)
    memmap = np.load(tmp_path / "s2.npy", mmap_mode="r")
    days = np.arange(4) * 5
    np.testing.assert_array_equal(
        multitemporal_mask(memmap, days), multitemporal_mask(series, days)
    )
    with pytest.raises(ValueError, match="day offsets"):
        multitemporal_mask(series, days[:3])


# --- registry and agreement -------------------------------------------------------------


def test_registry_detectors_share_one_signature():
    series = stack(VEGETATION, CLOUD, VEGETATION, size=4)
    for name, detector in REFERENCE_DETECTORS.items():
        if name == "csmask" and not csmask_available():
            continue
        mask = detector(series, np.array([0, 5, 10]))
        assert mask.shape == (3, 4, 4) and mask.dtype == np.uint8, name
        assert set(np.unique(mask)) <= {REF_CLEAR, REF_CLOUD, REF_SHADOW, REF_THIN}, name


def test_available_references(monkeypatch):
    assert available_references(True)[0] == "truth"
    assert "truth" not in available_references(False)
    assert {"spectral", "multitemporal"} <= set(available_references(False))
    monkeypatch.setattr(references, "csmask_available", lambda: False)
    assert available_references(False) == ["spectral", "multitemporal"]


def test_csmask_missing_package_gives_install_hint(monkeypatch):
    monkeypatch.setattr(csmask_module, "csmask_available", lambda: False)
    with pytest.raises(ImportError, match="pip install"):
        csmask_mask(stack(VEGETATION), np.array([0]))


def test_csmask_import_is_lazy():
    code = "import sys, am4cm.clouds.references; print('onnxruntime' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_agreement_on_a_small_case():
    truth = np.array([0, 0, 1, 1, 2, 2])
    perfect = agreement(np.array([0, 0, 3, 1, 2, 2]), truth)
    assert perfect["kappa"] == 1.0 and perfect["cloud_f1"] == 1.0 and perfect["n"] == 6
    scores = agreement(np.array([0, 1, 1, 1]), np.array([0, 0, 1, 1]))
    assert scores["kappa"] == pytest.approx(0.5)
    assert scores["cloud_precision"] == pytest.approx(2 / 3)
    assert scores["cloud_recall"] == 1.0 and scores["cloud_f1"] == pytest.approx(0.8)
    assert scores["cloud_iou"] == pytest.approx(2 / 3) and scores["clear_recall"] == 0.5
    assert np.isnan(scores["shadow_precision"])
    with pytest.raises(ValueError, match="shapes"):
        agreement(np.zeros(3, np.uint8), np.zeros(4, np.uint8))


# --- the real labelled scene ------------------------------------------------------------


@pytest.fixture(scope="module")
def scene():
    return load_labelled_scene(SCENE)


@pytest.fixture(scope="module")
def scene_scores(scene):
    img, truth = scene
    return {name: agreement(mask, truth) for name, mask in scene_masks(img).items()}


@needs_scene
def test_scene_labels_match_the_readme(scene):
    img, truth = scene
    assert img.shape == (512, 512, 6)
    np.testing.assert_array_equal(np.bincount(truth.ravel()), [183_964, 49_597, 28_583])


@needs_scene
@pytest.mark.parametrize("name", ["spectral", "multitemporal"])
def test_weight_free_detectors_on_the_real_scene(scene_scores, name):
    scores = scene_scores[name]
    assert scores["kappa"] >= 0.75
    assert scores["cloud_recall"] >= 0.88 and scores["cloud_precision"] >= 0.72
    assert scores["shadow_f1"] >= 0.78


@needs_scene
@pytest.mark.parametrize("level", ["l1c", "l2a"])
def test_csmask_on_the_real_scene(scene_scores, level):
    pytest.importorskip("ukis_csmask")
    pytest.importorskip("onnxruntime")
    scores = scene_scores[f"csmask_{level}"]
    assert scores["kappa"] >= 0.7
    assert scores["cloud_f1"] >= 0.78 and scores["shadow_f1"] >= 0.75


@needs_scene
def test_batched_csmask_equals_the_package_on_pastis_sized_frames(scene):
    pytest.importorskip("ukis_csmask")
    pytest.importorskip("onnxruntime")
    img, _ = scene
    crops = img[None, :128, 256:384]
    s2 = np.zeros((1, len(BANDS), 128, 128), dtype=np.int16)
    s2[:, list(CSMASK_CHANNELS)] = np.round(np.moveaxis(crops, -1, 1) * REFLECTANCE_SCALE)
    batched = csmask_mask(s2, np.array([0]))
    reflectance = np.moveaxis(s2[:, list(CSMASK_CHANNELS)], 1, -1) / REFLECTANCE_SCALE
    direct = np.stack([csmask_frame(frame.astype(np.float32)) for frame in reflectance])
    np.testing.assert_array_equal(batched, direct)
    assert (batched == REF_CLOUD).any() and (batched == REF_SHADOW).any()
