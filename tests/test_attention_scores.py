"""Clear scores from attention, their detection metrics, the summary and the figures."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from am4cm.attention import detection as det
from am4cm.attention import scores as sc
from am4cm.clouds import REF_CLEAR, REF_CLOUD, REF_SHADOW, REF_THIN
from am4cm.figures import attention as fig

LINEAR = det.Binning(0.0, 1.0, 2048, log_scale=False)


def _softmax(logits: np.ndarray) -> np.ndarray:
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    return weights / weights.sum(axis=1, keepdims=True)


def _series(values: list[float], codes: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """A 1 x 1 patch whose pixel has one date per value: (T, 1, 1) score and reference."""
    return (
        np.asarray(values, dtype=float)[:, None, None],
        np.asarray(codes, dtype=np.uint8)[:, None, None],
    )


def _value(table: pd.DataFrame, metric: str, task: str = "cloud", subset: str = "all") -> float:
    rows = table[(table.metric == metric) & (table.task == task) & (table.subset == subset)]
    assert len(rows) == 1, (metric, task, subset)
    return float(rows.value.iloc[0])


def _random_patch(seed: int, shift: float = 0.25, size: int = 12, n_dates: int = 10):
    """A patch with clear, cloud and shadow pairs; clouds have lower clear scores by ``shift``."""
    rng = np.random.default_rng(seed)
    ref = rng.choice(
        np.array([REF_CLEAR, REF_CLOUD, REF_THIN, REF_SHADOW], dtype=np.uint8),
        size=(n_dates, size, size),
        p=[0.5, 0.25, 0.1, 0.15],
    )
    patch_effect = rng.normal(scale=0.05)
    score = rng.random(ref.shape) * 0.6 + 0.2 + patch_effect
    score[ref != REF_CLEAR] -= shift
    return np.clip(score, 0.0, 1.0), ref


# --- scores -----------------------------------------------------------------------------------


def test_score_names_and_shapes():
    att = _softmax(np.random.default_rng(0).normal(size=(3, 7, 4, 5)))
    names = sc.score_names(3)
    assert names[-3:] == ["head_0", "head_1", "head_2"]
    assert {"mean", "max", "mean_x_T", "rank", "date_median_ratio", "date_zscore"} <= set(names)
    maps = sc.compute_scores(att)
    assert list(maps) == names
    for name, value in maps.items():
        assert value.shape == (7, 4, 5), name
        assert np.isfinite(value).all(), name
        assert sc.get_score(name).description


def test_uniform_attention_scores():
    att = np.full((2, 8, 3, 3), 1 / 8)
    assert np.allclose(sc.attention_times_t(att), 1.0)
    assert np.allclose(sc.attention_rank(att), 0.5)
    assert np.allclose(sc.date_median_ratio(att), 1.0)
    assert np.allclose(sc.date_zscore(att), 0.0)


def test_head_mean_max_and_rank_known_values():
    att = np.zeros((2, 4, 1, 1))
    att[0, :, 0, 0] = [0.125, 0.5, 0.25, 0.125]
    att[1, :, 0, 0] = [0.375, 0.125, 0.25, 0.5]
    assert np.allclose(sc.mean_attention(att)[:, 0, 0], [0.25, 0.3125, 0.25, 0.3125])
    assert np.allclose(sc.max_attention(att)[:, 0, 0], [0.375, 0.5, 0.25, 0.5])
    assert np.allclose(sc.attention_times_t(att)[:, 0, 0], [1.0, 1.25, 1.0, 1.25])
    assert np.allclose(sc.compute_scores(att, ["head_1"])["head_1"][:, 0, 0], att[1, :, 0, 0])
    # mean ranks: two ties of two dates each -> average ranks 1.5 and 3.5 of 1..4
    assert np.allclose(sc.attention_rank(att)[:, 0, 0], [1 / 6, 5 / 6, 1 / 6, 5 / 6])
    strict = np.zeros((1, 4, 1, 1))
    strict[0, :, 0, 0] = [0.1, 0.4, 0.2, 0.3]
    assert np.allclose(sc.attention_rank(strict)[:, 0, 0], [0, 1, 1 / 3, 2 / 3])


def test_per_date_normalisations():
    att = np.zeros((1, 2, 1, 4))
    att[0, 0, 0] = [0.1, 0.2, 0.3, 0.4]
    att[0, 1, 0] = 1 - att[0, 0, 0]
    ratio = sc.date_median_ratio(att)
    assert np.allclose(ratio[0, 0], np.array([0.1, 0.2, 0.3, 0.4]) / 0.25)
    z = sc.date_zscore(att)
    assert np.allclose(z.mean(axis=(1, 2)), 0.0)
    assert np.allclose(z.std(axis=(1, 2)), 1.0)
    assert z[0, 0, 3] > 0 > z[1, 0, 3]


def test_score_errors():
    with pytest.raises(KeyError):
        sc.get_score("median")
    with pytest.raises(ValueError):
        sc.compute_scores(np.ones((2, 3, 4)))
    with pytest.raises(ValueError):
        sc.compute_scores(np.full((2, 3, 1, 1), 1 / 3), ["head_2"])


# --- exact helpers and sign convention ---------------------------------------------------------


def test_sign_convention_perfect_inverted_random():
    rng = np.random.default_rng(1)
    cloudy = rng.random(2000) < 0.3
    perfect = np.where(cloudy, 0.1, 0.9) + rng.random(2000) * 0.01
    assert det.roc_auc(perfect, cloudy) == 1.0
    assert det.average_precision(perfect, cloudy) == 1.0
    assert det.roc_auc(-perfect, cloudy) == 0.0
    assert det.roc_auc(rng.random(2000), cloudy) == pytest.approx(0.5, abs=0.04)


@pytest.mark.parametrize("decimals", [2, 6])
def test_exact_helpers_match_sklearn(decimals):
    rng = np.random.default_rng(decimals)
    positives = rng.random(3000) < 0.35
    clear = np.round(rng.normal(size=3000) - 0.7 * positives, decimals)
    assert det.roc_auc(clear, positives) == pytest.approx(
        roc_auc_score(positives, -clear), abs=1e-12
    )
    assert det.average_precision(clear, positives) == pytest.approx(
        average_precision_score(positives, -clear), abs=1e-12
    )


def test_best_threshold_crafted_case():
    clear = np.array([0.1, 0.2, 0.3, 0.6, 0.4, 0.5, 0.7, 0.8, 0.9])
    cloudy = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0], dtype=bool)
    threshold, f1, iou = det.best_threshold(clear, cloudy)
    # flagging clear < 0.35 catches 3 of 4 clouds and no clear pair: F1 6/7, IoU 3/4
    assert threshold == pytest.approx(0.35)
    assert f1 == pytest.approx(6 / 7)
    assert iou == pytest.approx(3 / 4)
    assert det.threshold_metrics(clear, cloudy, threshold) == pytest.approx(
        {"precision": 1.0, "recall": 0.75, "f1": 6 / 7, "iou": 0.75}
    )


def test_binning_edges_and_log_scale():
    binning = det.Binning(-3.0, 0.0, 300, log_scale=True)
    values = np.array([0.0, 1e-5, 1e-3, 0.02, 0.5, 1.0, 5.0])
    bins = binning.index(values)
    assert bins[0] == bins[1] == 0 and bins[-1] == bins[-2] == 299
    assert np.all(np.diff(bins) >= 0)
    edges = binning.upper_edge(bins[2:5])
    assert np.all(values[2:5] < edges) and np.all(edges <= values[2:5] * 10 ** (3 / 300) + 1e-12)
    assert binning.upper_edge(299) == np.inf and np.isnan(binning.upper_edge(-1))


# --- accumulator -------------------------------------------------------------------------------


def test_histogram_auc_ap_match_sklearn():
    rng = np.random.default_rng(3)
    acc = det.DetectionAccumulator("mean_x_T", "truth", det.binning_for("mean_x_T"))
    pooled_scores, pooled_refs = [], []
    for patch in range(3):
        ref = rng.choice(np.array([REF_CLEAR, REF_CLOUD], dtype=np.uint8), size=(20, 16, 16))
        score = np.exp(rng.normal(size=ref.shape) - 1.0 * (ref == REF_CLOUD))
        acc.add_patch(patch, score, ref)
        pooled_scores.append(score.ravel())
        pooled_refs.append(ref.ravel())
    scores, refs = np.concatenate(pooled_scores), np.concatenate(pooled_refs)
    table = acc.table(n_boot=20)
    cloudy = refs == REF_CLOUD
    assert _value(table, "auc") == pytest.approx(roc_auc_score(cloudy, -scores), abs=1e-3)
    assert _value(table, "ap") == pytest.approx(average_precision_score(cloudy, -scores), abs=1e-3)
    assert _value(table, "best_f1") == pytest.approx(
        det.best_threshold(scores, cloudy)[1], abs=1e-3
    )


def test_accumulator_perfect_inverted_random():
    rng = np.random.default_rng(4)
    ref = rng.choice(np.array([REF_CLEAR, REF_CLOUD], dtype=np.uint8), size=(6, 8, 8))
    good = np.where(ref == REF_CLEAR, 0.8, 0.2)
    for clear_score, expected in ((good, 1.0), (1 - good, 0.0)):
        acc = det.DetectionAccumulator("rank", "truth", LINEAR)
        acc.add_patch("p", clear_score, ref)
        table = acc.table(n_boot=10)
        assert _value(table, "auc") == expected
    acc = det.DetectionAccumulator("rank", "truth", LINEAR)
    acc.add_patch("p", rng.random(ref.shape), ref)
    assert _value(acc.table(n_boot=10), "auc") == pytest.approx(0.5, abs=0.06)


def test_shadow_pairs_excluded_from_cloud_task():
    score, ref = _series(
        [0.9, 0.8, 0.1, 0.2, 0.05, 0.01],
        [REF_CLEAR, REF_CLEAR, REF_CLOUD, REF_THIN, REF_SHADOW, REF_SHADOW],
    )
    acc = det.DetectionAccumulator("rank", "truth", LINEAR)
    acc.add_patch(0, score, ref)
    table = acc.table(n_boot=10)
    cloud_all = table[(table.task == "cloud") & (table.subset == "all")].iloc[0]
    assert (cloud_all.n_positive, cloud_all.n_negative) == (2, 2)
    # shadows sit below the clouds: were they negatives, the AUC would drop below 1
    assert _value(table, "auc") == 1.0
    shadow_all = table[(table.task == "shadow") & (table.subset == "all")].iloc[0]
    assert (shadow_all.n_positive, shadow_all.n_negative) == (2, 2)


def test_val_threshold_applied_to_test():
    acc = det.DetectionAccumulator("rank", "truth", LINEAR)
    val_score, val_ref = _series([0.1, 0.2, 0.6, 0.8], [REF_CLOUD, REF_CLOUD, REF_CLEAR, REF_CLEAR])
    acc.add_patch("v", val_score, val_ref, split="val")
    test_values = [0.1, 0.3, 0.5, 0.35, 0.7, 0.8]
    test_codes = [REF_CLOUD, REF_CLOUD, REF_CLOUD, REF_CLEAR, REF_CLEAR, REF_CLEAR]
    acc.add_patch("t", *_series(test_values, test_codes), split="test")
    table = acc.table(n_boot=10)
    threshold = _value(table, "val_threshold")
    # the val threshold sits mid-gap between the val clouds (<= 0.2) and clear pairs (>= 0.6)
    assert threshold == pytest.approx(0.4, abs=1e-3)
    # on test it flags 0.1, 0.3 (clouds) and 0.35 (clear): precision 2/3, recall 2/3, IoU 2/4
    assert _value(table, "precision_at_val_threshold") == pytest.approx(2 / 3)
    assert _value(table, "recall_at_val_threshold") == pytest.approx(2 / 3)
    assert _value(table, "f1_at_val_threshold") == pytest.approx(2 / 3)
    assert _value(table, "iou_at_val_threshold") == pytest.approx(0.5)
    expected = det.threshold_metrics(
        np.array(test_values), np.isin(test_codes, (REF_CLOUD, REF_THIN)), threshold
    )
    assert _value(table, "f1_at_val_threshold") == pytest.approx(expected["f1"])
    # the oracle threshold on test does better (flag < ~0.6: F1 6/7) than the honest one
    assert _value(table, "best_f1") == pytest.approx(6 / 7)


def test_no_val_patches_leaves_val_metrics_nan():
    acc = det.DetectionAccumulator("rank", "truth", LINEAR)
    acc.add_patch("t", *_random_patch(0))
    table = acc.table(n_boot=10)
    assert np.isnan(_value(table, "val_threshold"))
    assert np.isnan(_value(table, "f1_at_val_threshold"))
    assert np.isfinite(_value(table, "auc"))


def test_bootstrap_interval_contains_estimate_and_narrows():
    widths = []
    for n_patches in (6, 60):
        acc = det.DetectionAccumulator("rank", "truth", LINEAR)
        for patch in range(n_patches):
            acc.add_patch(patch, *_random_patch(patch, shift=0.1, size=6, n_dates=6))
        table = acc.table(n_boot=200, seed=0)
        row = table[
            (table.metric == "auc") & (table.task == "cloud") & (table.subset == "all")
        ].iloc[0]
        assert row.ci_low <= row.value <= row.ci_high
        widths.append(row.ci_high - row.ci_low)
    assert widths[1] < widths[0] * 0.6


def test_bootstrap_is_seeded():
    acc = det.DetectionAccumulator("rank", "truth", LINEAR)
    for patch in range(5):
        acc.add_patch(patch, *_random_patch(patch, size=5, n_dates=4))
    first, again = acc.table(n_boot=30, seed=7), acc.table(n_boot=30, seed=7)
    pd.testing.assert_frame_equal(first, again)
    assert not acc.table(n_boot=30, seed=8).ci_low.equals(first.ci_low)


def test_breakdown_subsets_and_counts():
    size = 4
    ref = np.zeros((4, size, size), dtype=np.uint8)
    ref[1, :1] = REF_CLOUD  # 25 % cloudy
    ref[2, :3] = REF_CLOUD  # 75 % cloudy
    ref[2, 3, :2] = REF_THIN  # + 2 thin -> 14 / 16 cloudy: still [0.5, 0.9)
    ref[3] = REF_CLOUD  # 100 % cloudy
    ref[0, 0, 0] = REF_SHADOW
    labels = np.zeros((size, size), dtype=np.int64)
    labels[:, 2:] = 3  # right half Corn
    score = np.where(ref == REF_CLEAR, 0.9, 0.1)
    acc = det.DetectionAccumulator("rank", "truth", LINEAR)
    acc.add_patch(0, score, ref, labels)
    table = acc.table(n_boot=10)
    cloud = table[(table.task == "cloud") & (table.metric == "auc")].set_index("subset")
    counts = {subset: (row.n_positive, row.n_negative) for subset, row in cloud.iterrows()}
    assert counts["all"] == (4 + 14 + 16, 15 + 12 + 2)
    assert counts["thick"] == (4 + 12 + 16, 29)
    assert counts["thin"] == (2, 29)
    assert counts["date_cloud_frac=[0,0.1)"] == (0, 15)
    assert counts["date_cloud_frac=[0.1,0.5)"] == (4, 12)
    assert counts["date_cloud_frac=[0.5,0.9)"] == (14, 2)
    assert counts["date_cloud_frac=[0.9,1]"] == (16, 0)
    assert counts["class=Background"] == (2 + 8 + 8, 7 + 6)
    assert counts["class=Corn"] == (2 + 6 + 8, 8 + 6 + 2)
    assert "class=Meadow" not in counts  # no pixel of that class: no row
    assert np.isnan(cloud.loc["date_cloud_frac=[0,0.1)", "value"])
    assert cloud.loc["class=Corn", "value"] == 1.0
    shadow = table[(table.task == "shadow") & (table.metric == "auc")].set_index("subset")
    assert (shadow.loc["all", "n_positive"], shadow.loc["all", "n_negative"]) == (1, 29)
    assert "thin" not in shadow.index
    assert list(table.columns) == list(det.COLUMNS)
    assert set(table.metric) == set(det.METRICS)


def test_accumulator_input_checks():
    acc = det.DetectionAccumulator("rank", "truth", LINEAR)
    score, ref = _random_patch(0, size=3, n_dates=2)
    acc.add_patch("a", score, ref)
    with pytest.raises(ValueError):
        acc.add_patch("a", score, ref)
    with pytest.raises(ValueError):
        acc.add_patch("b", score[:1], ref)
    with pytest.raises(ValueError):
        acc.add_patch("c", score, ref, split="train")
    with pytest.raises(ValueError):
        det.DetectionAccumulator("rank", "truth", LINEAR).table()


def test_reference_detector_as_binary_score():
    clear, cloud, shadow = REF_CLEAR, REF_CLOUD, REF_SHADOW
    truth = np.array([clear, clear, clear, clear, clear, cloud, cloud, shadow, 255])
    rule = np.array([clear, clear, clear, clear, cloud, cloud, clear, shadow, clear])
    binary = det.reference_clear_score(rule)
    assert binary.tolist() == [1, 1, 1, 1, 0, 0, 1, 0, 1]
    assert np.isnan(det.reference_clear_score(truth)[-1])
    suite = det.DetectionSuite(n_bins=64)
    references = {"truth": truth[:, None, None], "rule": rule[:, None, None]}
    suite.add_patch("v", det.reference_scores(references), references, split="val")
    suite.add_patch("t", det.reference_scores(references), references, split="test")
    assert set(suite.accumulators) == {("ref:rule", "truth"), ("ref:truth", "rule")}
    table = suite.table(n_boot=10)
    rule_vs_truth = table[table.score == "ref:rule"]
    # truth: 5 clear, 2 cloud (shadow and no-data excluded); the rule flags 1 cloud and 1 clear
    assert _value(rule_vs_truth, "f1_at_val_threshold") == pytest.approx(0.5)
    assert _value(rule_vs_truth, "val_threshold") == pytest.approx(0.5)
    expected_auc = roc_auc_score([0, 0, 0, 0, 0, 1, 1], -binary[:7])
    assert _value(rule_vs_truth, "auc") == pytest.approx(expected_auc)


# --- suite, summary, curves --------------------------------------------------------------------


@pytest.fixture(scope="module")
def study():
    """A small two-reference study with a cloud-aware head and a blind head."""
    rng = np.random.default_rng(11)
    suite = det.DetectionSuite(n_bins=512)
    for patch in range(8):
        ref = rng.choice(
            np.array([REF_CLEAR, REF_CLOUD, REF_THIN, REF_SHADOW], dtype=np.uint8),
            size=(12, 8, 8),
            p=[0.55, 0.25, 0.1, 0.1],
        )
        logits = rng.normal(size=(2, *ref.shape))
        logits[0] += np.where(ref == REF_CLEAR, 2.0, np.where(ref == REF_CLOUD, -2.0, 0.0))
        rule = np.where(rng.random(ref.shape) < 0.1, REF_CLOUD, ref).astype(np.uint8)
        maps = sc.compute_scores(_softmax(logits))
        references = {"synthetic": ref, "rule": rule}
        maps.update(det.reference_scores(references))
        labels = rng.integers(0, 19, size=(8, 8))
        suite.add_patch(patch, maps, references, labels, split="val" if patch < 3 else "test")
    return suite, suite.table(n_boot=50)


def test_suite_table_and_summary(study):
    _, table = study
    assert set(table.reference) == {"synthetic", "rule"}
    assert {"head_0", "head_1", "mean", "ref:rule", "ref:synthetic"} <= set(table.score)
    head_auc = table[(table.reference == "synthetic") & (table.task == "cloud")]
    head_auc = head_auc[(head_auc.subset == "all") & (head_auc.metric == "auc")].set_index("score")
    assert head_auc.loc["head_0", "value"] > 0.85
    assert head_auc.loc["head_1", "value"] == pytest.approx(0.5, abs=0.08)
    text = det.summarise_answer(table)
    best = head_auc.drop(index=[s for s in head_auc.index if s.startswith("ref:")]).value.idxmax()
    assert f"`{best}`" in text
    assert f"{head_auc.loc[best, 'value']:.3f}" in text
    assert "`head_0`" in text and "`synthetic`" in text and "`rule`" in text
    assert "thin clouds" in text and "shadows" in text
    f1 = table[(table.score == best) & (table.reference == "synthetic")]
    assert f"{_value(f1, 'f1_at_val_threshold'):.3f}" in text


def test_summary_without_attention_rows():
    empty = pd.DataFrame(columns=list(det.COLUMNS))
    assert "nothing to summarise" in det.summarise_answer(empty.astype({"score": str}))


def test_curves(study):
    suite, _ = study
    curves = suite.curves("cloud", "all")
    assert len(curves) == len(suite.accumulators)
    for curve in curves:
        assert curve.fpr[0] == curve.tpr[0] == 0.0
        assert curve.fpr[-1] == pytest.approx(1.0) and curve.tpr[-1] == pytest.approx(1.0)
        assert np.all(np.diff(curve.fpr) >= 0) and np.all(np.diff(curve.recall) >= 0)
        assert curve.auc == pytest.approx(np.trapezoid(curve.tpr, curve.fpr), abs=1e-9)
    with pytest.raises(KeyError):
        suite.accumulators[("mean", "synthetic")].curve("shadow", "thin")


def test_sample_by_category():
    score, ref = _random_patch(2)
    samples = det.sample_by_category(score, ref, 30, seed=0)
    assert set(samples.category) == set(det.CATEGORY_NAMES.values())
    assert samples.groupby("category").size().max() == 30


# --- figures -----------------------------------------------------------------------------------


def _assert_png(path):
    assert path.exists() and path.stat().st_size > 1000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(path.parent.glob(f".{path.name}*"))


def test_figures_write_pngs(tmp_path, study):
    suite, table = study
    rng = np.random.default_rng(5)
    n_dates, size = 6, 16
    rgb = rng.random((n_dates, size, size, 3))
    att = _softmax(rng.normal(size=(2, n_dates, size, size)))
    ref = rng.choice(
        np.array([REF_CLEAR, REF_CLOUD, REF_THIN, REF_SHADOW], dtype=np.uint8),
        size=(n_dates, size, size),
    )
    xt = sc.attention_times_t(att)
    dates = [dt.date(2019, 1, 1) + dt.timedelta(days=5 * k) for k in range(n_dates)]

    fig.plot_attention_dates(
        rgb[:3], xt[:3], ref[:3], dates[:3], 0.8, tmp_path / "dates.png", "dates"
    )
    fig.plot_time_series_panel(
        rgb,
        xt.mean(axis=(1, 2)),
        np.isin(ref, (REF_CLOUD, REF_THIN)).mean(axis=(1, 2)),
        [d.isoformat() for d in dates],
        tmp_path / "series.png",
        "series",
        n_cols=4,
    )
    fig.plot_roc_pr(suite.curves(), tmp_path / "rocpr.png", "curves")
    fig.plot_attention_distributions(
        det.sample_by_category(xt, ref, 50), tmp_path / "dist.png", "distributions"
    )
    fig.plot_auc_heatmap(table, tmp_path / "heat.png", "heads")
    for name in ("dates", "series", "rocpr", "dist", "heat"):
        _assert_png(tmp_path / f"{name}.png")
    with pytest.raises(ValueError):
        fig.plot_auc_heatmap(table[~table.score.str.startswith("head_")], tmp_path / "x.png", "x")
