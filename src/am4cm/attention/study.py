"""The cloud-mask study of one run: score attention against every reference, patch by patch.

Each val or test patch is scored on its own (:func:`score_patch`: histograms of every clear
score against every reference mask, saved per patch), so a cluster can spread the work;
:func:`gather_study` pools them into the tidy table and the written answer. Val patches only
fix the honest threshold; every reported number is measured on the test patches.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from am4cm.attention.detection import (
    DetectionSuite,
    reference_scores,
    sample_by_category,
    summarise_answer,
)
from am4cm.attention.extract import load_patch_attention
from am4cm.attention.scores import attention_times_t, compute_scores
from am4cm.clouds import REF_CLOUD, REF_THIN
from am4cm.data.pastis import open_s2, read_labels, read_metadata
from am4cm.figures.attention import plot_attention_dates, plot_time_series_panel
from am4cm.figures.evaluation import rgb_composite

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StudyResult:
    """The tidy score table, the markdown answer, ROC/PR curves and sampled attention values."""

    table: pd.DataFrame
    summary: str
    suite: DetectionSuite
    samples: pd.DataFrame


def score_patch(
    root: Path | str,
    patch_id: int,
    split: str,
    attention_path: Path | str,
    reference_paths: Mapping[str, Path | str],
    seed: int = 0,
    samples_per_category: int = 2000,
) -> tuple[DetectionSuite, pd.DataFrame]:
    """Histograms of every attention score and reference detector against every reference,
    for one patch; on test patches also a sample of attention x T per reference category."""
    attention = load_patch_attention(attention_path)["attention"].astype(np.float32)
    references = {name: np.load(path) for name, path in reference_paths.items()}
    suite = DetectionSuite()
    scores = {**compute_scores(attention), **reference_scores(references)}
    suite.add_patch(patch_id, scores, references, read_labels(root, patch_id), split)
    samples = [pd.DataFrame(columns=["value", "category", "reference", "patch_id"])]
    if split == "test":
        relative = attention_times_t(attention)
        for name, reference in references.items():
            drawn = sample_by_category(relative, reference, samples_per_category, seed + patch_id)
            samples.append(drawn.assign(reference=name, patch_id=patch_id))
    return suite, pd.concat(samples, ignore_index=True)


def gather_study(
    count_paths: Sequence[Path | str],
    sample_paths: Sequence[Path | str],
    n_boot: int = 200,
    seed: int = 0,
) -> StudyResult:
    """Pool the per-patch files of :func:`score_patch` (val and test) into the study's table."""
    suite = DetectionSuite.load(count_paths)
    log.info("bootstrapping %d (score, reference) pairs over patches", len(suite.accumulators))
    table = suite.table(n_boot=n_boot, seed=seed)
    samples = pd.concat([pd.read_csv(path) for path in sample_paths], ignore_index=True)
    samples["value"] = samples["value"].astype(float)  # val patches add empty, untyped files
    return StudyResult(table, summarise_answer(table), suite, samples)


def primary_reference(references: list[str]) -> str:
    """The reference the example figures are drawn against: the truth where it exists."""
    return "truth" if "truth" in references else references[0]


def val_threshold(table: pd.DataFrame, score: str, reference: str) -> float:
    """The honest threshold of ``score`` for clouds against ``reference``, chosen on val patches."""
    rows = table[
        (table["score"] == score)
        & (table["reference"] == reference)
        & (table["task"] == "cloud")
        & (table["subset"] == "all")
        & (table["metric"] == "val_threshold")
    ]
    if rows.empty:
        raise ValueError(f"no val threshold for {score} against {reference} in the score table")
    return float(rows["value"].iloc[0])


def example_dates(reference: np.ndarray, count: int = 4) -> list[int]:
    """Dates worth showing, in time order: the clearest, the cloudiest, and partly cloudy ones
    (cloud fraction nearest 50 %) with thin cloud preferred where the reference marks it."""
    cloudy = np.isin(reference, (REF_CLOUD, REF_THIN)).mean(axis=(1, 2))
    thin = (reference == REF_THIN).mean(axis=(1, 2))
    chosen = [int(np.argmin(cloudy)), int(np.argmax(cloudy))]
    partial_order = np.argsort(np.abs(cloudy - 0.5) - thin)
    chosen += [int(k) for k in partial_order if int(k) not in chosen]
    return sorted(chosen[:count])


def plot_patch_examples(
    root: Path | str,
    patch_id: int,
    attention_path: Path | str,
    reference: np.ndarray,
    reference_name: str,
    threshold: float,
    dates_figure: Path | str,
    series_figure: Path | str,
    run: int,
) -> None:
    """The prior work's figure generalised (chosen dates: RGB, attention, flagged, reference)
    and the whole series of one patch with per-date attention and cloud fraction."""
    archive = load_patch_attention(attention_path)
    relative = attention_times_t(archive["attention"].astype(np.float32))
    row = read_metadata(root).set_index("ID_PATCH").loc[patch_id]
    series = open_s2(root, patch_id, int(row["T"]))
    dates = row["dates"]
    chosen = example_dates(reference)
    plot_attention_dates(
        np.stack([rgb_composite(np.asarray(series[k])) for k in chosen]),
        relative[chosen],
        reference[chosen],
        [dates[k] for k in chosen],
        threshold,
        dates_figure,
        f"Run {run}, test patch {patch_id}: attention against the {reference_name} cloud mask",
    )
    cloud_fraction = np.isin(reference, (REF_CLOUD, REF_THIN)).mean(axis=(1, 2))
    plot_time_series_panel(
        np.stack([rgb_composite(np.asarray(frame)) for frame in series]),
        relative.mean(axis=(1, 2)),
        cloud_fraction,
        list(dates),
        series_figure,
        f"Run {run}, test patch {patch_id}: every date, its mean attention \u00d7 T "
        f"and its {reference_name} cloud fraction",
    )


HEADLINE_SCORES = ("mean_x_T", "mean", "ref:spectral", "ref:multitemporal", "ref:csmask")
"""Scores compared across runs: the two plain attention scores and the reference detectors."""
HEADLINE_METRICS = {
    ("cloud", "all", "auc"): "cloud_auc",
    ("cloud", "thick", "auc"): "thick_cloud_auc",
    ("cloud", "thin", "auc"): "thin_cloud_auc",
    ("shadow", "all", "auc"): "shadow_auc",
    ("cloud", "all", "f1_at_val_threshold"): "cloud_f1_at_val_threshold",
    ("cloud", "all", "iou_at_val_threshold"): "cloud_iou_at_val_threshold",
}


def headline_across_runs(tables: Mapping[int, pd.DataFrame]) -> pd.DataFrame:
    """One row per (run, reference, score) with the headline metrics of each run's table, then
    their mean and standard deviation over the runs (run ``mean`` and ``std``)."""
    rows = []
    for run, table in tables.items():
        chosen = table[table["score"].isin(HEADLINE_SCORES)]
        for (reference, score), pairs in chosen.groupby(["reference", "score"], sort=False):
            values = {
                name: pairs.loc[
                    (pairs["task"] == task)
                    & (pairs["subset"] == subset)
                    & (pairs["metric"] == metric),
                    "value",
                ]
                for (task, subset, metric), name in HEADLINE_METRICS.items()
            }
            rows.append(
                {
                    "run": str(run),
                    "reference": reference,
                    "score": score,
                    **{name: float(v.iloc[0]) if len(v) else np.nan for name, v in values.items()},
                }
            )
    frame = pd.DataFrame(rows)
    metrics = list(HEADLINE_METRICS.values())
    spread = frame.groupby(["reference", "score"], sort=False)[metrics].agg(["mean", "std"])
    summaries = [
        spread.xs(statistic, axis=1, level=1).reset_index().assign(run=statistic)
        for statistic in ("mean", "std")
    ]
    return pd.concat([frame, *summaries], ignore_index=True)[
        ["run", "reference", "score", *metrics]
    ]
