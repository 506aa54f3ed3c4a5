"""Assess a trained model on its test fold: every pixel, pixel- and parcel-level tables, figures."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from am4cm.evaluation import (
    confusion_frame,
    matrix_from_frame,
    parcel_confusion,
    per_class_table,
    pooled_summary,
    scores_from_confusion,
)
from am4cm.figures.evaluation import (
    MapSample,
    clearest_date,
    plot_classification_maps,
    plot_confusion,
    plot_per_class_f1,
    rgb_composite,
)
from am4cm.inference import TestEvaluation, evaluate_patches
from am4cm.io import write_csv
from am4cm.training.train import load_model, pick_device

log = logging.getLogger(__name__)


def headline_row(run: int, pixel_matrix: np.ndarray, parcel_matrix: np.ndarray) -> pd.DataFrame:
    """One row: the pixel-level headline scores, then the same scores per parcel."""
    row = {"run": run, **scores_from_confusion(pixel_matrix)}
    parcel = scores_from_confusion(parcel_matrix)
    row.update({f"parcel_{key}": value for key, value in parcel.items() if key != "n_pixels"})
    row["n_parcels"] = int(parcel_matrix.sum())
    return pd.DataFrame([row])


def map_samples(evaluation: TestEvaluation) -> list[MapSample]:
    """Classification-map samples, each shown on its clearest date."""
    samples = []
    for sample in evaluation.samples:
        series = sample["series"]
        index = clearest_date(series)
        samples.append(
            MapSample(
                patch_id=sample["patch_id"],
                rgb=rgb_composite(np.asarray(series[index])),
                date=sample["dates"][index],
                truth=sample["truth"],
                prediction=sample["prediction"],
            )
        )
    return samples


def assess_run(
    root: Path | str,
    run: int,
    test_ids: list[int],
    model_path: Path | str,
    outputs: Mapping[str, Path | str],
    device: str = "auto",
    n_samples: int = 3,
) -> pd.DataFrame:
    """Predict every pixel of the test patches and write the tables and figures of ``outputs``.

    ``outputs`` keys: metrics, per_class, confusion, parcel_per_class, parcel_confusion,
    parcels, confusion_figure, f1_figure, maps_figure. Returns the headline row.
    """
    torch_device = pick_device(device)
    model = load_model(model_path, torch_device)
    log.info("run %d: predicting %d test patches on %s", run, len(test_ids), torch_device)
    evaluation = evaluate_patches(root, test_ids, model, torch_device, n_samples)
    matrix = evaluation.pixel_confusion.matrix
    votes = evaluation.parcel_table()
    parcel_matrix = parcel_confusion(votes)
    headline = headline_row(run, matrix, parcel_matrix)
    write_csv(headline, outputs["metrics"])
    pixel_table = per_class_table(matrix)
    write_csv(pixel_table, outputs["per_class"])
    write_csv(confusion_frame(matrix), outputs["confusion"], index=True)
    write_csv(per_class_table(parcel_matrix), outputs["parcel_per_class"])
    write_csv(confusion_frame(parcel_matrix), outputs["parcel_confusion"], index=True)
    write_csv(votes, outputs["parcels"])
    scores = headline.iloc[0]
    caption = f"run {run}, {scores['n_pixels']:,} test pixels"
    plot_confusion(matrix, outputs["confusion_figure"], f"Test confusion, {caption}")
    plot_per_class_f1(
        pixel_table, outputs["f1_figure"], f"Per-class F1 on the test fold, {caption}"
    )
    plot_classification_maps(
        map_samples(evaluation),
        outputs["maps_figure"],
        f"Test patches of run {run}: OA {scores['overall_accuracy']:.3f}, mIoU {scores['mean_iou']:.3f}",
    )
    log.info(
        "run %d: OA %.4f, mIoU %.4f, macro-F1 %.4f over %d pixels; parcel OA %.4f",
        run,
        scores["overall_accuracy"],
        scores["mean_iou"],
        scores["macro_f1"],
        scores["n_pixels"],
        scores["parcel_overall_accuracy"],
    )
    return headline


def summarise_runs(confusion_paths: Mapping[str, Path | str]) -> pd.DataFrame:
    """Per-run rows and the official pooled row (from the summed test confusion matrices)."""
    matrices = {
        run: matrix_from_frame(pd.read_csv(path, index_col=0))
        for run, path in confusion_paths.items()
    }
    return pooled_summary(matrices)
