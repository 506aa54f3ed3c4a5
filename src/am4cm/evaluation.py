"""Crop-classification metrics under the official PASTIS semantic-segmentation protocol.

Everything starts from a full ``N_CLASSES x N_CLASSES`` confusion matrix (rows = truth,
columns = prediction, int64 counts). The scores then follow the utae-paps protocol:

- the void class (``VOID_CLASS``) row and column are dropped, so pixels whose truth is void
  never count, and pixels of scored classes predicted as void silently leave the score
  (:func:`scores_from_confusion` reports how many as ``n_predicted_void``);
- overall accuracy and the class means run over classes 0-18, background included;
- a class's IoU, precision, recall and F1 follow the official ratios, which are 0/0 = NaN
  when their denominator is empty; the means skip NaN, so a class absent from the test set
  (no true and no predicted pixel) does not count, while a class predicted but absent from
  the truth counts with IoU 0 and F1 0;
- the five-run headline is computed from the SUM of the test confusion matrices
  (:func:`pooled_summary`), not by averaging per-run scores.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from am4cm.data.facts import N_CLASSES, SCORED_CLASSES, VOID_CLASS, class_names

SCORE_COLUMNS: tuple[str, ...] = (
    "overall_accuracy",
    "mean_iou",
    "macro_f1",
    "n_pixels",
    "n_classes_present",
    "n_predicted_void",
)
"""Keys of :func:`scores_from_confusion`, in the column order of :func:`pooled_summary`."""


class ConfusionAccumulator:
    """Running confusion matrix over all classes, void included (rows truth, columns prediction).

    ``add`` may be called once per batch or patch; ``matrix`` holds the int64 counts so far.
    """

    def __init__(self, n_classes: int = N_CLASSES) -> None:
        self.n_classes = n_classes
        self.matrix = np.zeros((n_classes, n_classes), dtype=np.int64)

    def add(self, y_true: np.ndarray, y_pred: np.ndarray) -> None:
        """Count the pairs of two integer label arrays of the same size (any shape, flattened)."""
        truth = np.asarray(y_true).ravel()
        pred = np.asarray(y_pred).ravel()
        if truth.shape != pred.shape:
            raise ValueError(f"{truth.size} true labels but {pred.size} predictions")
        if truth.size == 0:
            return
        for name, labels in (("y_true", truth), ("y_pred", pred)):
            if labels.min() < 0 or labels.max() >= self.n_classes:
                raise ValueError(f"{name} has labels outside 0..{self.n_classes - 1}")
        flat = truth.astype(np.int64) * self.n_classes + pred.astype(np.int64)
        counts = np.bincount(flat, minlength=self.n_classes**2)
        self.matrix += counts.reshape(self.n_classes, self.n_classes)

    def value(self) -> np.ndarray:
        """A copy of the counts so far."""
        return self.matrix.copy()


def _check_full(matrix: np.ndarray) -> np.ndarray:
    array = np.asarray(matrix)
    if array.shape != (N_CLASSES, N_CLASSES):
        raise ValueError(f"expected a {N_CLASSES}x{N_CLASSES} confusion matrix, got {array.shape}")
    return array


def _scored(matrix: np.ndarray) -> np.ndarray:
    """The confusion matrix without the void row and column, as float."""
    scored = list(SCORED_CLASSES)
    return _check_full(matrix)[np.ix_(scored, scored)].astype(np.float64)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """Elementwise ratio, NaN where the denominator is 0 (the official 0/0 behaviour)."""
    out = np.full(np.shape(numerator), np.nan)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def _nanmean(values: np.ndarray) -> float:
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else float("nan")


def per_class_table(matrix: np.ndarray) -> pd.DataFrame:
    """Precision, recall, F1, IoU, support and predicted pixels of each scored class (0-18).

    Computed on the confusion matrix without void (as the official code does):
    precision = tp / predicted and recall = tp / support are NaN when their denominator is 0;
    F1 = 2tp / (2tp + fp + fn) and IoU = tp / (tp + fp + fn) are NaN only for a class absent
    from the test set (support 0 and never predicted). A class predicted but with support 0
    gets F1 = IoU = 0. ``predicted`` counts only pixels whose truth is not void.
    """
    scored = _scored(matrix)
    tp = np.diag(scored)
    support = scored.sum(axis=1)
    predicted = scored.sum(axis=0)
    names = class_names()
    return pd.DataFrame(
        {
            "class_id": list(SCORED_CLASSES),
            "class_name": [names[c] for c in SCORED_CLASSES],
            "precision": _ratio(tp, predicted),
            "recall": _ratio(tp, support),
            "f1": _ratio(2 * tp, support + predicted),
            "iou": _ratio(tp, support + predicted - tp),
            "support": support.astype(np.int64),
            "predicted": predicted.astype(np.int64),
        }
    )


def scores_from_confusion(matrix: np.ndarray) -> dict[str, float]:
    """Headline scores of a full 20x20 confusion matrix under the official protocol.

    overall_accuracy and mean_iou (over classes 0-18, absent classes skipped), macro_f1 (mean
    F1 over the same classes), n_pixels (scored pixels: truth and prediction both non-void),
    n_classes_present (classes entering the means: true or predicted at least once),
    n_predicted_void (pixels of scored classes predicted as void, which the protocol drops).
    Scores are NaN when no pixel is scored; the three counts are ints.
    """
    full = _check_full(matrix)
    scored = _scored(full)
    table = per_class_table(full)
    n_pixels = scored.sum()
    return {
        "overall_accuracy": float(np.trace(scored) / n_pixels) if n_pixels else float("nan"),
        "mean_iou": _nanmean(table["iou"].to_numpy()),
        "macro_f1": _nanmean(table["f1"].to_numpy()),
        "n_pixels": int(n_pixels),
        "n_classes_present": int(table["iou"].notna().sum()),
        "n_predicted_void": int(full[list(SCORED_CLASSES), VOID_CLASS].sum()),
    }


def confusion_frame(matrix: np.ndarray) -> pd.DataFrame:
    """The full 20x20 counts labelled by class name (index ``true``, columns ``predicted``)."""
    names = class_names()
    return pd.DataFrame(
        _check_full(matrix).astype(np.int64),
        index=pd.Index(names, name="true"),
        columns=pd.Index(names, name="predicted"),
    )


def matrix_from_frame(frame: pd.DataFrame) -> np.ndarray:
    """Inverse of :func:`confusion_frame`: int64 counts in class-id order (e.g. from the CSV)."""
    names = class_names()
    missing = set(names) - set(frame.index) | set(names) - set(frame.columns)
    if missing:
        raise ValueError(f"confusion frame lacks classes {sorted(missing)}")
    return frame.loc[names, names].to_numpy(dtype=np.int64)


def _majority(groups: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per group: the most frequent label, ties going to the smallest label id."""
    keys, counts = np.unique(groups * N_CLASSES + labels, return_counts=True)
    group, label = np.divmod(keys, N_CLASSES)
    order = np.lexsort((label, -counts, group))
    group, label = group[order], label[order]
    first = np.r_[True, group[1:] != group[:-1]]
    return group[first], label[first]


def parcel_votes(parcel_ids: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray) -> pd.DataFrame:
    """One row per parcel (id > 0): parcel_id, true_class, pred_class, n_pixels.

    Only pixels whose truth is not void take part. true_class is the majority of the truth
    labels of those pixels, pred_class the majority vote of their predictions (which may be
    the void class); ties go to the smallest class id. n_pixels counts the voting pixels;
    parcels with only void truth are dropped. Ids must be unique over the arrays given: to
    pool several patches, call once per patch and concatenate the tables.
    """
    ids = np.asarray(parcel_ids).ravel().astype(np.int64)
    truth = np.asarray(y_true).ravel().astype(np.int64)
    pred = np.asarray(y_pred).ravel().astype(np.int64)
    if not ids.size == truth.size == pred.size:
        raise ValueError("parcel_ids, y_true and y_pred must have the same number of pixels")
    for name, labels in (("y_true", truth), ("y_pred", pred)):
        if labels.size and (labels.min() < 0 or labels.max() >= N_CLASSES):
            raise ValueError(f"{name} has labels outside 0..{N_CLASSES - 1}")
    keep = (ids > 0) & (truth != VOID_CLASS)
    ids, truth, pred = ids[keep], truth[keep], pred[keep]
    columns = {"parcel_id": [], "true_class": [], "pred_class": [], "n_pixels": []}
    if ids.size == 0:
        return pd.DataFrame(columns).astype(np.int64)
    parcels, true_class = _majority(ids, truth)
    _, pred_class = _majority(ids, pred)
    _, n_pixels = np.unique(ids, return_counts=True)
    return pd.DataFrame(
        {
            "parcel_id": parcels,
            "true_class": true_class,
            "pred_class": pred_class,
            "n_pixels": n_pixels.astype(np.int64),
        }
    )


def parcel_confusion(votes: pd.DataFrame) -> np.ndarray:
    """The 20x20 parcel-level confusion matrix of a :func:`parcel_votes` table (one count each)."""
    accumulator = ConfusionAccumulator()
    accumulator.add(votes["true_class"].to_numpy(), votes["pred_class"].to_numpy())
    return accumulator.matrix


def pooled_summary(matrices: Mapping[str, np.ndarray]) -> pd.DataFrame:
    """Headline scores per run (column ``run``), then a ``pooled`` row from the summed matrices.

    The pooled row is the official five-fold headline: scores of the SUM of the test
    confusion matrices, which differs from the mean of the per-run scores.
    """
    if not matrices:
        raise ValueError("no confusion matrices to summarise")
    if "pooled" in matrices:
        raise ValueError("'pooled' is reserved for the summed row")
    rows = [{"run": run, **scores_from_confusion(m)} for run, m in matrices.items()]
    total = np.stack([_check_full(m) for m in matrices.values()]).astype(np.int64).sum(axis=0)
    rows.append({"run": "pooled", **scores_from_confusion(total)})
    return pd.DataFrame(rows, columns=["run", *SCORE_COLUMNS])
