"""The synthetic PASTIS: real layout, determinism, safe writing, and realism of what it draws."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from am4cm.data import facts, synthetic
from am4cm.data.synthetic import PatchSpec, SyntheticConfig, generate_synthetic_pastis
from am4cm.figures.patch import ndvi, plot_synthetic_patch

SMALL = SyntheticConfig(seed=5, patches_per_fold=2, patch_size=48)
TINY = SyntheticConfig(seed=1, patches_per_fold=1, patch_size=32)
CODES = facts.CLOUD_TRUTH_CODES
BLUE, NIR = facts.BANDS.index("B2"), facts.BANDS.index("B8")


@pytest.fixture(scope="module")
def small_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 patches of 48 x 48 (two per fold)."""
    root = tmp_path_factory.mktemp("synthetic") / "PASTIS"
    generate_synthetic_pastis(root, SMALL, progress=False)
    return root


@pytest.fixture(scope="module")
def features(small_root: Path) -> list[dict]:
    return json.loads((small_root / "metadata.geojson").read_text())["features"]


@pytest.fixture(scope="module")
def patches(small_root: Path, features: list[dict]) -> list[dict[str, np.ndarray | str]]:
    """Arrays of every patch of the small dataset, with its tile."""
    loaded = []
    for feature in features:
        pid = feature["properties"]["ID_PATCH"]
        loaded.append(
            {
                "tile": feature["properties"]["TILE"],
                "s2": np.load(small_root / "DATA_S2" / f"S2_{pid}.npy"),
                "target": np.load(small_root / "ANNOTATIONS" / f"TARGET_{pid}.npy"),
                "parcels": np.load(small_root / "ANNOTATIONS" / f"ParcelIDs_{pid}.npy"),
                "clouds": np.load(small_root / facts.CLOUD_TRUTH_DIR / f"CLOUD_{pid}.npy"),
            }
        )
    return loaded


@pytest.fixture(scope="module")
def layouts() -> list[synthetic.Layout]:
    """Fields of 20 full-size patches (no rendering), as the default dataset draws them."""
    return [
        synthetic.make_layout(np.random.default_rng([0, spec.patch_id]), 128, spec.tile, 1)
        for spec in synthetic.choose_patches(0, 4)
    ]


def _digests(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_files_dtypes_and_shapes_are_those_of_real_pastis(
    small_root: Path, features: list[dict]
) -> None:
    size = SMALL.patch_size
    assert len(features) == 5 * SMALL.patches_per_fold
    for feature in features:
        pid = feature["properties"]["ID_PATCH"]
        n_dates = len(feature["properties"]["dates-S2"])
        s2_path = small_root / "DATA_S2" / f"S2_{pid}.npy"
        s2 = np.load(s2_path, mmap_mode="r")
        assert s2.dtype == np.int16 and s2.shape == (n_dates, 10, size, size)
        assert s2_path.stat().st_size == 128 + n_dates * 10 * size * size * 2
        target = np.load(small_root / "ANNOTATIONS" / f"TARGET_{pid}.npy")
        assert target.dtype == np.uint8 and target.shape == (3, size, size)
        assert target.max() <= facts.VOID_CLASS
        assert (target[1] == target[0]).all() and (target[2] == target[0]).all()
        parcels = np.load(small_root / "ANNOTATIONS" / f"ParcelIDs_{pid}.npy")
        assert parcels.dtype == np.int32 and parcels.shape == (size, size)
        clouds = np.load(small_root / facts.CLOUD_TRUTH_DIR / f"CLOUD_{pid}.npy")
        assert clouds.dtype == np.uint8 and clouds.shape == (n_dates, size, size)
        assert set(np.unique(clouds)) <= set(CODES.values())


def test_metadata_matches_the_real_schema_folds_tiles_and_calendars(
    small_root: Path, features: list[dict]
) -> None:
    collection = json.loads((small_root / "metadata.geojson").read_text())
    assert collection["type"] == "FeatureCollection"
    assert collection["crs"]["properties"]["name"] == "urn:ogc:def:crs:EPSG::2154"
    real = {pid: (fold, tile, t) for pid, fold, tile, t in facts.real_fold_map()}
    folds = []
    for index, feature in enumerate(features):
        props = feature["properties"]
        assert feature["id"] == str(index)
        assert set(props) == {
            "Fold",
            "ID_PATCH",
            "N_Parcel",
            "Parcel_Cover",
            "TILE",
            "dates-S2",
            "id",
        }
        assert isinstance(props["ID_PATCH"], int) and props["id"] == str(props["ID_PATCH"])
        fold, tile, n_dates = real[props["ID_PATCH"]]
        assert (props["Fold"], props["TILE"]) == (fold, tile)
        calendar = facts.tile_calendars()[tile]
        assert len(props["dates-S2"]) == n_dates == len(calendar)
        assert [facts.parse_yyyymmdd(props["dates-S2"][str(k)]) for k in range(n_dates)] == list(
            calendar
        )
        parcels = np.load(small_root / "ANNOTATIONS" / f"ParcelIDs_{props['ID_PATCH']}.npy")
        assert props["N_Parcel"] == np.unique(parcels[parcels > 0]).size > 0
        assert props["Parcel_Cover"] == pytest.approx(float(np.mean(parcels > 0)))
        ring = np.array(feature["geometry"]["coordinates"][0][0])
        assert feature["geometry"]["type"] == "MultiPolygon" and ring.shape == (5, 2)
        assert (ring[0] == ring[-1]).all()
        sides = np.linalg.norm(np.diff(ring, axis=0), axis=1)
        assert sides == pytest.approx(np.full(4, SMALL.patch_size * 10.0))
        assert 300_000 < ring[0, 0] < 1_100_000 and 6_200_000 < ring[0, 1] < 7_000_000
        folds.append(props["Fold"])
    assert sorted(folds) == sorted(list(facts.FOLDS) * SMALL.patches_per_fold)
    assert len({f["properties"]["TILE"] for f in features}) == 4


def test_norm_statistics_are_those_of_each_fold(small_root: Path, features: list[dict]) -> None:
    stats = json.loads((small_root / "NORM_S2_patch.json").read_text())
    assert sorted(stats) == [f"Fold_{k}" for k in facts.FOLDS]
    for fold in facts.FOLDS:
        ids = [f["properties"]["ID_PATCH"] for f in features if f["properties"]["Fold"] == fold]
        stack = np.concatenate(
            [np.load(small_root / "DATA_S2" / f"S2_{pid}.npy") for pid in ids]
        ).astype(np.float64)
        assert stats[f"Fold_{fold}"]["mean"] == pytest.approx(stack.mean(axis=(0, 2, 3)).tolist())
        assert stats[f"Fold_{fold}"]["std"] == pytest.approx(stack.std(axis=(0, 2, 3)).tolist())


def test_same_seed_gives_identical_files_and_patches_do_not_depend_on_the_others(
    tmp_path: Path,
) -> None:
    first = generate_synthetic_pastis(tmp_path / "a", TINY, progress=False)
    generate_synthetic_pastis(tmp_path / "b", TINY, progress=False)
    assert _digests(tmp_path / "a") == _digests(tmp_path / "b")
    more = SyntheticConfig(seed=TINY.seed, patches_per_fold=2, patch_size=TINY.patch_size)
    assert set(first) < set(generate_synthetic_pastis(tmp_path / "c", more, progress=False))
    larger = _digests(tmp_path / "c")
    for name, digest in _digests(tmp_path / "a").items():
        if name.endswith(".npy"):
            assert larger[name] == digest


def test_another_seed_gives_other_data(tmp_path: Path) -> None:
    spec = synthetic.choose_patches(TINY.seed, 1)[0]
    first = synthetic.make_patch(1, spec, 32)
    second = synthetic.make_patch(2, spec, 32)
    assert not np.array_equal(first.s2, second.s2)
    assert not np.array_equal(first.target, second.target)


def test_refuses_a_folder_that_is_not_empty_and_accepts_an_empty_one(tmp_path: Path) -> None:
    root = tmp_path / "PASTIS"
    root.mkdir()
    (root / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError):
        generate_synthetic_pastis(root, TINY, progress=False)
    assert [p.name for p in root.iterdir()] == ["notes.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["PASTIS"]
    empty = tmp_path / "empty"
    empty.mkdir()
    generate_synthetic_pastis(empty, TINY, progress=False)
    assert (empty / "metadata.geojson").is_file()


def test_an_interrupted_run_leaves_no_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    written = []
    real_writer = synthetic.write_patch

    def fail_on_third(root: Path, patch_id: int, patch: synthetic.SyntheticPatch) -> None:
        if len(written) == 2:
            raise KeyboardInterrupt
        written.append(patch_id)
        real_writer(root, patch_id, patch)

    monkeypatch.setattr(synthetic, "write_patch", fail_on_third)
    with pytest.raises(KeyboardInterrupt):
        generate_synthetic_pastis(tmp_path / "PASTIS", TINY, progress=False)
    assert len(written) == 2
    assert list(tmp_path.iterdir()) == []


def test_class_shares_are_close_to_the_real_ones(layouts: list[synthetic.Layout]) -> None:
    counts = sum(
        np.bincount(layout.semantic.ravel(), minlength=facts.N_CLASSES) for layout in layouts
    )
    shares = counts / counts.sum()
    largest = np.argsort(-shares[: facts.VOID_CLASS])
    assert set(largest[:2]) == {0, 1}
    assert 0.25 < shares[0] < 0.45
    assert 0.10 < shares[1] < 0.25
    assert 0.04 < shares[facts.VOID_CLASS] < 0.12
    assert (shares[: facts.VOID_CLASS] > 0).all()
    real = facts.real_class_shares()
    for common in (2, 3, 15):
        assert 0.5 * real[common] < shares[common] < 2 * real[common]
    rare = [k for k in range(1, facts.VOID_CLASS) if real.get(k, 0) < 0.01]
    assert shares[rare].max() < 0.03


def test_parcels_have_field_sizes_and_void_lies_on_edges_and_cut_parcels(
    layouts: list[synthetic.Layout],
) -> None:
    parcels_per_patch = [np.unique(lay.parcel_ids[lay.parcel_ids > 0]).size for lay in layouts]
    assert 25 <= np.median(parcels_per_patch) <= 140
    touching_border = 0
    edge_void = 0
    for layout in layouts:
        void = layout.semantic == facts.VOID_CLASS
        ids = np.pad(layout.parcel_ids, 1, mode="edge")
        neighbours_differ = (
            (ids[:-2, 1:-1] != ids[1:-1, 1:-1])
            | (ids[2:, 1:-1] != ids[1:-1, 1:-1])
            | (ids[1:-1, :-2] != ids[1:-1, 1:-1])
            | (ids[1:-1, 2:] != ids[1:-1, 1:-1])
        )
        edge_void += int((void & neighbours_differ).sum())
        border = np.zeros(void.shape, dtype=bool)
        border[[0, -1], :] = border[:, [0, -1]] = True
        touching_border += int((void & border).any())
        assert (layout.parcel_ids[layout.semantic == 0] == 0).all()
        assert (layout.parcel_ids[(layout.semantic > 0) & ~void] > 0).all()
    assert touching_border >= 15
    assert edge_void > 0.1 * sum(int((lay.semantic == facts.VOID_CLASS).sum()) for lay in layouts)


def _monthly_clear_ndvi(patches: list[dict], class_id: int) -> dict[int, float]:
    """Mean NDVI of clear pixels of a class per calendar month, over all patches."""
    sums: dict[int, float] = {}
    counts: dict[int, int] = {}
    for patch in patches:
        dates = facts.tile_calendars()[patch["tile"]]
        index = ndvi(patch["s2"])
        pixels = (patch["target"][0] == class_id)[None] & (patch["clouds"] == CODES["clear"])
        for t, date in enumerate(dates):
            month = date.month if date.year == 2019 else date.month - 12
            sums[month] = sums.get(month, 0.0) + float(index[t][pixels[t]].sum())
            counts[month] = counts.get(month, 0) + int(pixels[t].sum())
    return {m: sums[m] / counts[m] for m in sums if counts[m] >= 30}


@pytest.mark.parametrize(
    ("class_id", "peak_months"),
    [(2, {3, 4, 5}), (3, {7, 8}), (4, {3, 4, 5}), (15, {7, 8})],
)
def test_clear_sky_ndvi_peaks_in_the_right_months(
    patches: list[dict], class_id: int, peak_months: set[int]
) -> None:
    monthly = _monthly_clear_ndvi(patches, class_id)
    assert len(monthly) >= 8
    peak = max(monthly, key=monthly.get)
    assert peak in peak_months
    assert monthly[peak] > 0.65
    assert min(monthly.values()) < 0.45


def test_clouds_are_bright_thin_clouds_between_and_shadows_dark(patches: list[dict]) -> None:
    blue = {code: [] for code in CODES.values()}
    shadow_nir, clear_nir = [], []
    for patch in patches:
        s2, clouds = patch["s2"], patch["clouds"]
        for code in CODES.values():
            blue[code].append(s2[:, BLUE][clouds == code])
        both = [(clouds == CODES[k]).sum(axis=(1, 2)) >= 20 for k in ("shadow", "clear")]
        for t in np.flatnonzero(both[0] & both[1]):
            shadow_nir.append(s2[t, NIR][clouds[t] == CODES["shadow"]].mean())
            clear_nir.append(s2[t, NIR][clouds[t] == CODES["clear"]].mean())
    median = {code: float(np.median(np.concatenate(values))) for code, values in blue.items()}
    assert median[CODES["clear"]] < 1500
    assert median[CODES["cloud"]] > 4000
    assert (
        median[CODES["clear"]] + 500 < median[CODES["thin_cloud"]] < median[CODES["cloud"]] - 1000
    )
    assert len(shadow_nir) >= 5
    assert np.median(np.array(shadow_nir) / np.array(clear_nir)) < 0.7
    thick_blue = np.concatenate(blue[CODES["cloud"]])
    assert thick_blue.max() > 10000
    assert (np.concatenate(blue[CODES["clear"]]) > 10000).mean() < 0.001


def test_dates_range_from_clear_to_overcast_and_winter_is_cloudier(patches: list[dict]) -> None:
    clear, overcast, winter_clear, summer_clear = [], [], [], []
    for patch in patches:
        clouds = patch["clouds"]
        affected = (clouds != CODES["clear"]).mean(axis=(1, 2))
        cloudy = np.isin(clouds, [CODES["cloud"], CODES["thin_cloud"]]).mean(axis=(1, 2))
        clear.extend(affected < 0.01)
        overcast.extend(cloudy >= 0.9)
        months = np.array([d.month for d in facts.tile_calendars()[patch["tile"]]])
        winter_clear.extend((affected < 0.01)[np.isin(months, [11, 12, 1, 2])])
        summer_clear.extend((affected < 0.01)[np.isin(months, [6, 7, 8])])
    assert 0.3 < np.mean(clear) < 0.65
    assert 0.03 < np.mean(overcast) < 0.2
    assert np.mean(summer_clear) > np.mean(winter_clear) + 0.05


def test_cloud_truth_is_what_was_rendered() -> None:
    spec = PatchSpec(30080, 1, "t31tfm")
    rng = np.random.default_rng(7)
    dates = list(facts.tile_calendars()[spec.tile])
    days = facts.day_offsets(dates).astype(np.float64)
    layout = synthetic.make_layout(rng, 64, spec.tile, 1)
    surface = synthetic.render_surface(rng, layout, days)
    regime, regional = synthetic.tile_weather(0, spec.tile, days)
    sky = synthetic.make_sky(rng, regime, regional, dates, 64)
    observed = synthetic.observe(rng, surface.copy(), sky) / facts.REFLECTANCE_SCALE
    truth = synthetic.cloud_truth(sky)
    opacity = 1 - (1 - sky.cumulus) * (1 - sky.cirrus)
    assert (opacity[truth == CODES["cloud"]] >= synthetic.THICK_OPACITY).all()
    thin = opacity[truth == CODES["thin_cloud"]]
    assert (
        thin.size
        and (thin >= synthetic.THIN_OPACITY).all()
        and (thin < synthetic.THICK_OPACITY).all()
    )
    assert (sky.shadow[truth == CODES["shadow"]] >= synthetic.SHADOW_STRENGTH).all()
    red = facts.BANDS.index("B4")
    change = np.abs(observed[:, red] - surface[:, red])
    assert np.median(change[truth == CODES["clear"]]) < 0.01
    assert np.median(change[truth == CODES["cloud"]]) > 0.3


def test_overview_figure_is_written(patches: list[dict], tmp_path: Path) -> None:
    patch = patches[0]
    dates = list(facts.tile_calendars()[patch["tile"]])
    for clouds, name in ((patch["clouds"], "with_truth.png"), (None, "without_truth.png")):
        path = tmp_path / name
        plot_synthetic_patch(patch["s2"], patch["target"][0], clouds, dates, path, "a patch")
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert path.stat().st_size > 20_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["with_truth.png", "without_truth.png"]


@pytest.mark.parametrize(
    "settings", [{"patches_per_fold": 0}, {"patches_per_fold": 10_000}, {"patch_size": 8}]
)
def test_config_rejects_impossible_sizes(settings: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        SyntheticConfig(**settings)
