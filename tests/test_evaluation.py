"""Metrics of am4cm.evaluation against confusion matrices worked out by hand."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import confusion_matrix

from am4cm.data.facts import N_CLASSES, VOID_CLASS, class_names
from am4cm.evaluation import (
    ConfusionAccumulator,
    confusion_frame,
    matrix_from_frame,
    parcel_confusion,
    parcel_votes,
    per_class_table,
    pooled_summary,
    scores_from_confusion,
)

# A 3-class case (classes 0, 1, 2) inside the 20 classes, rows = truth, columns = prediction:
#   truth 0: 5 -> 0, 1 -> 1
#   truth 1: 2 -> 0, 6 -> 1, 2 -> 2, and 3 predicted void (dropped by the protocol)
#   truth 2: 1 -> 1, 3 -> 2
#   truth void: 4 -> 0, 4 -> 1, 4 -> 2, 10 -> void (ignored: the void row is dropped)
PAIRS = {
    (0, 0): 5,
    (0, 1): 1,
    (1, 0): 2,
    (1, 1): 6,
    (1, 2): 2,
    (1, VOID_CLASS): 3,
    (2, 1): 1,
    (2, 2): 3,
    (VOID_CLASS, 0): 4,
    (VOID_CLASS, 1): 4,
    (VOID_CLASS, 2): 4,
    (VOID_CLASS, VOID_CLASS): 10,
}


def labels_of(pairs: dict[tuple[int, int], int]) -> tuple[np.ndarray, np.ndarray]:
    truth = np.repeat([t for t, _ in pairs], list(pairs.values()))
    pred = np.repeat([p for _, p in pairs], list(pairs.values()))
    return truth, pred


def matrix_of(pairs: dict[tuple[int, int], int]) -> np.ndarray:
    accumulator = ConfusionAccumulator()
    accumulator.add(*labels_of(pairs))
    return accumulator.matrix


def test_accumulator_counts_the_hand_example_in_place() -> None:
    matrix = matrix_of(PAIRS)
    assert matrix.shape == (N_CLASSES, N_CLASSES)
    assert matrix.dtype == np.int64
    for (truth, pred), count in PAIRS.items():
        assert matrix[truth, pred] == count
    assert matrix.sum() == sum(PAIRS.values())


def test_accumulator_matches_sklearn_over_several_batches() -> None:
    rng = np.random.default_rng(0)
    truth = rng.integers(0, N_CLASSES, size=(4, 32, 32))
    pred = np.where(rng.random(truth.shape) < 0.6, truth, rng.integers(0, N_CLASSES, truth.shape))
    accumulator = ConfusionAccumulator()
    for batch_truth, batch_pred in zip(truth, pred, strict=True):
        accumulator.add(batch_truth, batch_pred)
    expected = confusion_matrix(truth.ravel(), pred.ravel(), labels=list(range(N_CLASSES)))
    np.testing.assert_array_equal(accumulator.matrix, expected)
    np.testing.assert_array_equal(accumulator.value(), expected)
    assert accumulator.value() is not accumulator.matrix


def test_accumulator_rejects_bad_input() -> None:
    accumulator = ConfusionAccumulator()
    with pytest.raises(ValueError):
        accumulator.add(np.array([0, 20]), np.array([0, 1]))
    with pytest.raises(ValueError):
        accumulator.add(np.array([0, 1]), np.array([-1, 1]))
    with pytest.raises(ValueError):
        accumulator.add(np.array([0, 1, 2]), np.array([0, 1]))
    accumulator.add(np.array([], dtype=int), np.array([], dtype=int))
    assert accumulator.matrix.sum() == 0


def test_headline_scores_by_hand() -> None:
    scores = scores_from_confusion(matrix_of(PAIRS))
    # scored pixels: 6 + 10 + 4 = 20, correct 5 + 6 + 3 = 14 (void row and column dropped)
    assert scores["n_pixels"] == 20
    assert scores["overall_accuracy"] == pytest.approx(14 / 20)
    # IoU: class 0 5/(6+7-5), class 1 6/(10+8-6), class 2 3/(4+5-3)
    assert scores["mean_iou"] == pytest.approx((5 / 8 + 6 / 12 + 3 / 6) / 3)
    # F1 = 2tp / (support + predicted): 10/13, 12/18, 6/9
    assert scores["macro_f1"] == pytest.approx((10 / 13 + 12 / 18 + 6 / 9) / 3)
    assert scores["n_classes_present"] == 3
    assert scores["n_predicted_void"] == 3


def test_per_class_table_by_hand() -> None:
    table = per_class_table(matrix_of(PAIRS))
    assert list(table["class_id"]) == list(range(VOID_CLASS))
    assert list(table["class_name"]) == class_names()[:VOID_CLASS]
    head = table.iloc[:3]
    np.testing.assert_allclose(head["precision"], [5 / 7, 6 / 8, 3 / 5])
    np.testing.assert_allclose(head["recall"], [5 / 6, 6 / 10, 3 / 4])
    np.testing.assert_allclose(head["f1"], [10 / 13, 12 / 18, 6 / 9])
    np.testing.assert_allclose(head["iou"], [5 / 8, 6 / 12, 3 / 6])
    assert list(head["support"]) == [6, 10, 4]
    assert list(head["predicted"]) == [7, 8, 5]
    rest = table.iloc[3:]
    assert rest[["precision", "recall", "f1", "iou"]].isna().all().all()
    assert (rest[["support", "predicted"]] == 0).all().all()


def test_class_predicted_but_absent_from_truth_counts_with_iou_zero() -> None:
    pairs = {**PAIRS, (0, 5): 2}
    table = per_class_table(matrix_of(pairs)).set_index("class_id")
    assert table.loc[5, "iou"] == 0
    assert table.loc[5, "f1"] == 0
    assert table.loc[5, "precision"] == 0
    assert np.isnan(table.loc[5, "recall"])
    scores = scores_from_confusion(matrix_of(pairs))
    # class 0 now has support 8 and IoU 5/(8+7-5); class 5 enters the means with 0
    assert scores["n_classes_present"] == 4
    assert scores["mean_iou"] == pytest.approx((5 / 10 + 6 / 12 + 3 / 6 + 0) / 4)
    assert scores["macro_f1"] == pytest.approx((10 / 15 + 12 / 18 + 6 / 9 + 0) / 4)
    assert scores["overall_accuracy"] == pytest.approx(14 / 22)


def test_void_never_counts() -> None:
    base = scores_from_confusion(matrix_of(PAIRS))
    more_void_truth = scores_from_confusion(matrix_of({**PAIRS, (VOID_CLASS, 7): 50}))
    assert more_void_truth == base
    table = per_class_table(matrix_of({**PAIRS, (VOID_CLASS, 7): 50})).set_index("class_id")
    assert table.loc[7, "predicted"] == 0
    assert np.isnan(table.loc[7, "iou"])
    more_void_pred = scores_from_confusion(matrix_of({**PAIRS, (1, VOID_CLASS): 40}))
    assert more_void_pred["n_predicted_void"] == 40
    assert {k: v for k, v in more_void_pred.items() if k != "n_predicted_void"} == {
        k: v for k, v in base.items() if k != "n_predicted_void"
    }


def test_empty_matrix_gives_nan_scores() -> None:
    scores = scores_from_confusion(np.zeros((N_CLASSES, N_CLASSES), dtype=np.int64))
    assert np.isnan(scores["overall_accuracy"])
    assert np.isnan(scores["mean_iou"])
    assert scores["n_pixels"] == 0
    assert scores["n_classes_present"] == 0
    with pytest.raises(ValueError):
        scores_from_confusion(np.zeros((19, 19)))


def test_pooled_summary_scores_the_summed_matrix_not_the_mean() -> None:
    # run a: 10 pixels of class 0, all right: OA 1, mIoU 1 (only class 0 present)
    # run b: 10 pixels of class 1, all predicted 0: OA 0, mIoU 0 (classes 0 and 1, IoU 0)
    # pooled: class 0 IoU 10/(10+20-10) = 0.5, class 1 IoU 0 -> mIoU 0.25 (mean of runs: 0.5)
    runs = {"a": matrix_of({(0, 0): 10}), "b": matrix_of({(1, 0): 10, (2, VOID_CLASS): 1})}
    summary = pooled_summary(runs).set_index("run")
    assert list(summary.index) == ["a", "b", "pooled"]
    assert summary.loc["a", "mean_iou"] == pytest.approx(1.0)
    assert summary.loc["b", "mean_iou"] == pytest.approx(0.0)
    assert summary.loc["pooled", "mean_iou"] == pytest.approx(0.25)
    assert summary.loc["pooled", "overall_accuracy"] == pytest.approx(0.5)
    assert summary.loc["pooled", "n_pixels"] == 20
    assert summary.loc["pooled", "n_predicted_void"] == 1
    total = scores_from_confusion(runs["a"] + runs["b"])
    for key, value in total.items():
        assert summary.loc["pooled", key] == pytest.approx(value)
    assert summary.loc[["a", "b"], "mean_iou"].mean() != pytest.approx(0.25)


def test_pooled_summary_rejects_empty_and_reserved_names() -> None:
    with pytest.raises(ValueError):
        pooled_summary({})
    with pytest.raises(ValueError):
        pooled_summary({"pooled": matrix_of(PAIRS)})


def test_confusion_frame_round_trip_through_csv() -> None:
    rng = np.random.default_rng(1)
    matrix = rng.integers(0, 1000, size=(N_CLASSES, N_CLASSES)).astype(np.int64)
    frame = confusion_frame(matrix)
    assert list(frame.index) == class_names()
    assert list(frame.columns) == class_names()
    assert frame.index.name == "true"
    assert frame.loc["Meadow", "Corn"] == matrix[1, 3]
    text = io.StringIO()
    frame.to_csv(text)
    text.seek(0)
    back = matrix_from_frame(pd.read_csv(text, index_col=0))
    np.testing.assert_array_equal(back, matrix)
    assert back.dtype == np.int64
    shuffled = frame.iloc[::-1, ::-1]
    np.testing.assert_array_equal(matrix_from_frame(shuffled), matrix)
    with pytest.raises(ValueError):
        matrix_from_frame(frame.drop(columns="Corn"))


def test_parcel_votes_on_a_crafted_example() -> None:
    # parcel 101: non-void truth 4, 4, 5 -> 4; their predictions 4, 6, 6 -> 6
    #   (its void pixel predicted 4 would make a 4/6 tie if it were counted)
    # parcel 57: non-void truth 7, 7; predictions 9, 8: a tie, which goes to the smaller id 8
    #   (its two void pixels predicted 9 would make 9 win if they were counted)
    # id 0 (no parcel) and parcel 3 (only void truth) are dropped
    ids = np.array([[101, 101, 101, 101, 57, 57], [57, 57, 0, 0, 3, 3]])
    truth = np.array([[4, 4, 5, VOID_CLASS, 7, 7], [VOID_CLASS, VOID_CLASS, 2, 2, 19, 19]])
    pred = np.array([[4, 6, 6, 4, 9, 8], [9, 9, 2, 2, 1, 1]])
    votes = parcel_votes(ids, truth, pred)
    assert list(votes.columns) == ["parcel_id", "true_class", "pred_class", "n_pixels"]
    assert votes.to_dict("records") == [
        {"parcel_id": 57, "true_class": 7, "pred_class": 8, "n_pixels": 2},
        {"parcel_id": 101, "true_class": 4, "pred_class": 6, "n_pixels": 3},
    ]
    matrix = parcel_confusion(votes)
    assert matrix.sum() == 2
    assert matrix[7, 8] == 1
    assert matrix[4, 6] == 1
    scores = scores_from_confusion(matrix)
    assert scores["overall_accuracy"] == 0
    assert scores["n_pixels"] == 2


def test_parcel_votes_keep_predicted_void_and_handle_empty_input() -> None:
    votes = parcel_votes(np.array([5, 5, 5]), np.array([3, 3, 3]), np.array([19, 19, 3]))
    assert votes.to_dict("records") == [
        {"parcel_id": 5, "true_class": 3, "pred_class": VOID_CLASS, "n_pixels": 3}
    ]
    assert scores_from_confusion(parcel_confusion(votes))["n_predicted_void"] == 1
    empty = parcel_votes(np.zeros(4, dtype=int), np.ones(4, dtype=int), np.ones(4, dtype=int))
    assert empty.empty
    assert list(empty.columns) == ["parcel_id", "true_class", "pred_class", "n_pixels"]
    assert parcel_confusion(empty).sum() == 0


def test_parcel_votes_scale_to_many_parcels() -> None:
    rng = np.random.default_rng(2)
    ids = np.repeat(np.arange(1, 5001), 40)
    truth = np.repeat(rng.integers(0, VOID_CLASS, 5000), 40)
    pred = np.where(rng.random(ids.size) < 0.7, truth, rng.integers(0, N_CLASSES, ids.size))
    votes = parcel_votes(ids, truth, pred)
    assert len(votes) == 5000
    assert (votes["n_pixels"] == 40).all()
    np.testing.assert_array_equal(votes["true_class"], truth[::40])
    assert (votes["true_class"] == votes["pred_class"]).mean() > 0.99
