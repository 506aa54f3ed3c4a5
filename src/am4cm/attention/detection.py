"""Scoring clear scores as cloud detectors over many patches, streamed patch by patch.

Sign convention: a clear score is HIGH where the (pixel, date) is clear, so the detector
flags a pair "cloudy" where its clear score is LOW, and a threshold ``t`` flags the pairs with
``clear_score < t``. ROC AUC and average precision are those of the detector score
``-clear_score``: ``roc_auc(s, y) == sklearn.metrics.roc_auc_score(y, -s)``.

Tasks compare positives with clear negatives and drop every other pair: ``cloud`` (thick and
thin cloud vs clear; shadow pairs excluded) and ``shadow`` (shadow vs clear; cloud pairs
excluded). Each patch is reduced to fixed-bin histograms of its clear scores per reference
code and per subset (all pairs, date cloud-fraction bin, crop class), kept per patch (sparse)
so the bootstrap over patches is a matrix product. Metrics on ``test`` patches; the honest
threshold is the max-F1 threshold of the pooled ``val`` patches applied to ``test``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from am4cm.attention.scores import get_score
from am4cm.clouds import REF_CLEAR, REF_CLOUD, REF_SHADOW, REF_THIN
from am4cm.data.facts import class_names

CODES: tuple[int, ...] = (REF_CLEAR, REF_CLOUD, REF_SHADOW, REF_THIN)
"""Reference codes in histogram order; any other value (e.g. no data) is ignored."""
CATEGORY_NAMES: dict[int, str] = {
    REF_CLEAR: "clear",
    REF_THIN: "thin cloud",
    REF_CLOUD: "thick cloud",
    REF_SHADOW: "shadow",
}
TASKS: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {
    "cloud": ((REF_CLOUD, REF_THIN), (REF_CLEAR,)),
    "shadow": ((REF_SHADOW,), (REF_CLEAR,)),
}
"""Task name -> (positive codes, negative codes)."""
CLOUD_TYPES: dict[str, tuple[int, ...]] = {"thick": (REF_CLOUD,), "thin": (REF_THIN,)}
"""Subsets of the ``cloud`` task that keep one cloud type as positives."""
DATE_CLOUD_FRAC_EDGES: tuple[float, ...] = (0.0, 0.1, 0.5, 0.9, 1.0)
"""Bins of the reference cloud fraction (thick + thin) of a (patch, date); the last is closed."""
METRICS: tuple[str, ...] = (
    "auc",
    "ap",
    "best_f1",
    "best_iou",
    "best_threshold",
    "val_threshold",
    "f1_at_val_threshold",
    "iou_at_val_threshold",
    "precision_at_val_threshold",
    "recall_at_val_threshold",
)
"""``best_*`` use the max-F1 threshold of the test patches themselves (optimistic);
``*_at_val_threshold`` use the max-F1 threshold of the val patches (honest)."""
COLUMNS: tuple[str, ...] = (
    "score",
    "reference",
    "task",
    "subset",
    "metric",
    "value",
    "ci_low",
    "ci_high",
    "n_positive",
    "n_negative",
)
SPLITS: tuple[str, ...] = ("val", "test")
DEFAULT_N_BINS = 2048
REFERENCE_PREFIX = "ref:"
"""Prefix of a reference detector used as a binary clear score (see :func:`reference_scores`)."""


@dataclass(frozen=True)
class Binning:
    """Fixed histogram bins of a clear score over ``[lo, hi)`` (in log10 units if ``log_scale``).

    Values below ``lo`` (and non-positive ones on a log scale) fall in the first bin, values
    at or above ``hi`` in the last.
    """

    lo: float
    hi: float
    n_bins: int = DEFAULT_N_BINS
    log_scale: bool = False

    def index(self, values: np.ndarray) -> np.ndarray:
        """The bin of each value (not NaN), int64."""
        if self.log_scale:
            with np.errstate(divide="ignore", invalid="ignore"):
                position = np.log10(np.asarray(values, dtype=np.float64))
            position[np.isnan(position)] = -np.inf
        else:
            position = np.array(values, dtype=np.float64)
        position -= self.lo
        position *= self.n_bins / (self.hi - self.lo)
        np.floor(position, out=position)
        np.clip(position, 0, self.n_bins - 1, out=position)
        return position.astype(np.int64)

    def upper_edge(self, bins: np.ndarray | int) -> np.ndarray:
        """Score value above bin(s) ``bins``: flagging ``score < edge`` flags bins ``<= bins``.

        The last bin has no upper edge (``inf``); bin -1 (no threshold) gives NaN.
        """
        bins = np.asarray(bins)
        edge = self.lo + (bins + 1.0) * (self.hi - self.lo) / self.n_bins
        value = 10.0**edge if self.log_scale else edge
        return np.where(bins < 0, np.nan, np.where(bins >= self.n_bins - 1, np.inf, value))


def binning_for(score: str, n_bins: int = DEFAULT_N_BINS) -> Binning:
    """The fixed binning of a score name; binary reference scores (``ref:...``) bin over 0-1."""
    if score.startswith(REFERENCE_PREFIX):
        return Binning(0.0, 1.0, n_bins, False)
    spec = get_score(score)
    return Binning(spec.lo, spec.hi, n_bins, spec.log_scale)


def reference_score_name(reference: str) -> str:
    """Score name of a reference used as a detector: ``ref:<reference>``."""
    return f"{REFERENCE_PREFIX}{reference}"


def reference_clear_score(
    ref: np.ndarray, flagged: Sequence[int] = (REF_CLOUD, REF_THIN, REF_SHADOW)
) -> np.ndarray:
    """A reference mask as a binary clear score: 1 where clear, 0 where flagged, NaN elsewhere."""
    ref = np.asarray(ref)
    score = np.full(ref.shape, np.nan)
    score[ref == REF_CLEAR] = 1.0
    score[np.isin(ref, flagged)] = 0.0
    return score


def reference_scores(references: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each reference mask as a binary clear score, named by :func:`reference_score_name`."""
    return {
        reference_score_name(name): reference_clear_score(ref) for name, ref in references.items()
    }


def _hist_metrics(
    pos: np.ndarray,
    neg: np.ndarray,
    positions: np.ndarray | None = None,
    n_bins: int | None = None,
) -> dict[str, np.ndarray]:
    """AUC, AP and the max-F1 bin of histograms over ascending clear-score bins.

    ``pos`` and ``neg`` are (..., n) counts in the bins ``positions`` (ascending, default
    ``0..n-1``) of ``n_bins`` bins in all (default ``n``): dropping bins that are always empty
    changes no metric. Bin ``b`` as threshold flags bins ``<= b``. ``best_bin`` is the max-F1
    bin, moved to the middle of the empty bins that follow it, so a threshold sits mid-gap
    rather than at the edge of the flagged pairs. Metrics are NaN and ``best_bin`` -1 where a
    side is empty.
    """
    pos = np.asarray(pos, dtype=np.float64)
    neg = np.asarray(neg, dtype=np.float64)
    n = pos.shape[-1]
    positions = np.arange(n) if positions is None else np.asarray(positions)
    n_bins = n if n_bins is None else n_bins
    tp = np.cumsum(pos, axis=-1)
    fp = np.cumsum(neg, axis=-1)
    n_pos = tp[..., -1]
    n_neg = fp[..., -1]
    empty = (n_pos == 0) | (n_neg == 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        auc = np.sum(pos * (n_neg[..., None] - fp + 0.5 * neg), axis=-1) / (n_pos * n_neg)
        ap = np.sum(pos * (tp / (tp + fp)), axis=-1, where=pos > 0) / n_pos
        f1 = np.nan_to_num(2 * tp / (tp + fp + n_pos[..., None]))
    first = np.argmax(f1, axis=-1)
    index = np.arange(n)
    later = ((pos + neg) > 0) & (index > first[..., None])
    following = np.where(later, index, n).min(axis=-1)
    best_bin = (positions[first] + np.append(positions, n_bins)[following] - 1) // 2
    best_f1 = np.take_along_axis(f1, first[..., None], axis=-1)[..., 0]
    return {
        "auc": np.where(empty, np.nan, auc),
        "ap": np.where(empty, np.nan, ap),
        "best_f1": np.where(empty, np.nan, best_f1),
        "best_iou": np.where(empty, np.nan, best_f1 / (2 - best_f1)),
        "best_bin": np.where(empty, -1, best_bin),
    }


def _metrics_at_bin(
    pos: np.ndarray, neg: np.ndarray, bins: np.ndarray, positions: np.ndarray | None = None
) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and IoU of flagging bins ``<= bins`` ((...) ints; -1: NaN).

    ``positions`` are the bins of the columns, as in :func:`_hist_metrics`.
    """
    pos = np.asarray(pos, dtype=np.float64)
    neg = np.asarray(neg, dtype=np.float64)
    positions = np.arange(pos.shape[-1]) if positions is None else np.asarray(positions)
    bins = np.asarray(bins)
    column = np.searchsorted(positions, bins, side="right")[..., None]
    zero = np.zeros((*pos.shape[:-1], 1))
    tp = np.take_along_axis(np.concatenate([zero, np.cumsum(pos, axis=-1)], -1), column, -1)[..., 0]
    fp = np.take_along_axis(np.concatenate([zero, np.cumsum(neg, axis=-1)], -1), column, -1)[..., 0]
    n_pos = pos.sum(axis=-1)
    empty = (n_pos == 0) | (neg.sum(axis=-1) == 0) | (bins < 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(tp + fp > 0, tp / (tp + fp), np.nan)
        recall = tp / n_pos
        f1 = 2 * tp / (tp + fp + n_pos)
        iou = tp / (fp + n_pos)
    return {
        name: np.where(empty, np.nan, value)
        for name, value in (("precision", precision), ("recall", recall), ("f1", f1), ("iou", iou))
    }


def _exact_histogram(
    clear_scores: np.ndarray, positives: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct scores (ascending) with the positive and negative count at each."""
    scores = np.asarray(clear_scores, dtype=np.float64).ravel()
    labels = np.asarray(positives, dtype=bool).ravel()
    if scores.shape != labels.shape:
        raise ValueError(f"{scores.size} scores but {labels.size} labels")
    values, inverse = np.unique(scores, return_inverse=True)
    pos = np.bincount(inverse, weights=labels, minlength=values.size)
    neg = np.bincount(inverse, weights=~labels, minlength=values.size)
    return values, pos, neg


def roc_auc(clear_scores: np.ndarray, positives: np.ndarray) -> float:
    """Exact ROC AUC of flagging ``positives`` by LOW clear score (= sklearn's on ``-score``)."""
    _, pos, neg = _exact_histogram(clear_scores, positives)
    return float(_hist_metrics(pos, neg)["auc"])


def average_precision(clear_scores: np.ndarray, positives: np.ndarray) -> float:
    """Exact average precision of flagging ``positives`` by LOW clear score (sklearn's step AP)."""
    _, pos, neg = _exact_histogram(clear_scores, positives)
    return float(_hist_metrics(pos, neg)["ap"])


def best_threshold(clear_scores: np.ndarray, positives: np.ndarray) -> tuple[float, float, float]:
    """``(threshold, f1, iou)`` of the max-F1 rule ``clear_score < threshold``.

    The threshold lies midway between the last flagged and the first unflagged score.
    """
    values, pos, neg = _exact_histogram(clear_scores, positives)
    metrics = _hist_metrics(pos, neg)
    chosen = int(metrics["best_bin"])
    if chosen < 0:
        return np.nan, np.nan, np.nan
    threshold = np.inf if chosen == values.size - 1 else (values[chosen] + values[chosen + 1]) / 2
    return float(threshold), float(metrics["best_f1"]), float(metrics["best_iou"])


def threshold_metrics(
    clear_scores: np.ndarray, positives: np.ndarray, threshold: float
) -> dict[str, float]:
    """Precision, recall, F1 and IoU of flagging ``clear_score < threshold`` as positive."""
    flagged = np.asarray(clear_scores, dtype=np.float64).ravel() < threshold
    labels = np.asarray(positives, dtype=bool).ravel()
    tp = float(np.sum(flagged & labels))
    fp = float(np.sum(flagged & ~labels))
    n_pos = float(labels.sum())
    return {
        "precision": tp / (tp + fp) if tp + fp > 0 else np.nan,
        "recall": tp / n_pos if n_pos > 0 else np.nan,
        "f1": 2 * tp / (tp + fp + n_pos) if n_pos > 0 else np.nan,
        "iou": tp / (fp + n_pos) if n_pos > 0 else np.nan,
    }


@dataclass(frozen=True)
class Curve:
    """ROC and precision-recall curves of one score against one reference on the test patches."""

    score: str
    reference: str
    task: str
    subset: str
    fpr: np.ndarray
    tpr: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    auc: float
    ap: float


def _date_frac_label(k: int) -> str:
    lo, hi = DATE_CLOUD_FRAC_EDGES[k], DATE_CLOUD_FRAC_EDGES[k + 1]
    close = "]" if k == len(DATE_CLOUD_FRAC_EDGES) - 2 else ")"
    return f"date_cloud_frac=[{lo:g},{hi:g}{close}"


def _code_index(ref: np.ndarray) -> np.ndarray:
    """Position of each reference code in :data:`CODES`, -1 for any other value."""
    if ref.dtype == np.uint8:
        table = np.full(256, -1, dtype=np.int64)
        table[list(CODES)] = np.arange(len(CODES))
        return table[ref]
    index = np.full(ref.shape, -1, dtype=np.int64)
    for position, code in enumerate(CODES):
        index[ref == code] = position
    return index


@dataclass(frozen=True)
class _Strata:
    """Where a patch's pairs fall, shared by every score scored against one reference.

    ``code``: (T, H, W) position in :data:`CODES` (-1: ignored); ``date_bin``: (T,) bin of the
    date's reference cloud fraction; ``labels``: (H, W) class ids or None.
    """

    code: np.ndarray
    date_bin: np.ndarray
    labels: np.ndarray | None


def _strata(ref: np.ndarray, labels: np.ndarray | None) -> _Strata:
    """The strata of a reference (T, H, W) and optional class map (H, W)."""
    ref = np.asarray(ref)
    if ref.ndim != 3:
        raise ValueError(f"reference must be (T, H, W), got {ref.shape}")
    if labels is not None and np.shape(labels) != ref.shape[1:]:
        raise ValueError(f"labels {np.shape(labels)} must be (H, W) of {ref.shape}")
    code = _code_index(ref)
    flat = code.reshape(ref.shape[0], -1)
    known = (flat >= 0).sum(axis=1)
    cloudy = np.isin(flat, [CODES.index(REF_CLOUD), CODES.index(REF_THIN)]).sum(axis=1)
    fraction = cloudy / np.maximum(known, 1)
    n_frac = len(DATE_CLOUD_FRAC_EDGES) - 1
    date_bin = np.searchsorted(DATE_CLOUD_FRAC_EDGES, fraction, side="right") - 1
    return _Strata(
        code=code,
        date_bin=np.clip(date_bin, 0, n_frac - 1),
        labels=None if labels is None else np.asarray(labels, dtype=np.int64),
    )


def _multiplicities(rng: np.random.Generator, n_patches: int, n_boot: int) -> np.ndarray:
    """(n_boot, n_patches) counts of each patch in each resample with replacement."""
    draws = rng.integers(0, n_patches, size=(n_boot, n_patches))
    offsets = (np.arange(n_boot) * n_patches)[:, None]
    counts = np.bincount((draws + offsets).ravel(), minlength=n_boot * n_patches)
    return counts.reshape(n_boot, n_patches).astype(np.float64)


def _interval(samples: np.ndarray, ci: float) -> tuple[float, float]:
    """Percentile interval of the non-NaN samples (no interpolation, so ``inf`` is kept)."""
    finite = samples[~np.isnan(samples)]
    if finite.size == 0:
        return np.nan, np.nan
    tail = (1 - ci) / 2
    low, high = np.quantile(finite, [tail, 1 - tail], method="inverted_cdf")
    return float(low), float(high)


class DetectionAccumulator:
    """Streams one clear score against one reference over patches; :meth:`table` scores it.

    Memory: one sparse (groups x 4 codes x ``n_bins``) count matrix per patch, groups being
    all pairs, the date cloud-fraction bins and the crop classes.
    """

    def __init__(
        self,
        score: str,
        reference: str,
        binning: Binning | None = None,
        class_labels: Sequence[str] | None = None,
    ) -> None:
        self.score = score
        self.reference = reference
        self.binning = binning if binning is not None else binning_for(score)
        self.class_labels = list(class_labels) if class_labels is not None else class_names()
        self.groups = [
            "all",
            *(_date_frac_label(k) for k in range(len(DATE_CLOUD_FRAC_EDGES) - 1)),
            *(f"class={name}" for name in self.class_labels),
        ]
        self._patches: dict[str, dict[object, sp.csr_matrix]] = {split: {} for split in SPLITS}

    @property
    def _width(self) -> int:
        return len(CODES) * self.binning.n_bins

    def patch_ids(self, split: str = "test") -> list[object]:
        """Ids of the patches added to ``split``, in order."""
        return list(self._patches[split])

    def add_patch(
        self,
        patch_id: object,
        score_map: np.ndarray,
        ref: np.ndarray,
        labels: np.ndarray | None = None,
        split: str = "test",
    ) -> None:
        """Add a patch: ``score_map`` and ``ref`` (T, H, W), ``labels`` (H, W) class ids or None.

        Pairs with a non-finite score or a reference value outside :data:`CODES` are skipped.
        """
        self._add(patch_id, score_map, _strata(ref, labels), split)

    def _add(self, patch_id: object, score_map: np.ndarray, strata: _Strata, split: str) -> None:
        """Add a patch's counts, its reference already reduced to :class:`_Strata`."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if patch_id in self._patches[split]:
            raise ValueError(f"patch {patch_id!r} already added to {split}")
        score_map = np.asarray(score_map)
        if score_map.shape != strata.code.shape:
            raise ValueError(
                f"score {score_map.shape} and reference {strata.code.shape} must match (T, H, W)"
            )
        valid = (strata.code >= 0) & np.isfinite(score_map)
        width = self._width
        key = strata.code[valid] * self.binning.n_bins + self.binning.index(score_map[valid])
        n_frac = len(DATE_CLOUD_FRAC_EDGES) - 1
        dates = np.broadcast_to(strata.date_bin[:, None, None], valid.shape)[valid]
        blocks = [
            np.bincount(key, minlength=width)[None],
            np.bincount(dates * width + key, minlength=n_frac * width).reshape(n_frac, width),
        ]
        n_cls = len(self.class_labels)
        if strata.labels is None:
            blocks.append(np.zeros((n_cls, width), dtype=np.int64))
        else:
            classes = np.broadcast_to(strata.labels[None], valid.shape)[valid]
            keep = (classes >= 0) & (classes < n_cls)
            counts = np.bincount(classes[keep] * width + key[keep], minlength=n_cls * width)
            blocks.append(counts.reshape(n_cls, width))
        self._patches[split][patch_id] = sp.csr_matrix(np.vstack(blocks).astype(np.int32))

    def _stack(self, split: str) -> sp.csr_matrix | None:
        matrices = list(self._patches[split].values())
        return sp.vstack(matrices, format="csr", dtype=np.float64) if matrices else None

    def _subsets(self) -> list[tuple[str, str, int, tuple[int, ...]]]:
        """(task, subset, group, positive codes) of every reported subset."""
        subsets = []
        for task, (positives, _) in TASKS.items():
            subsets.append((task, "all", 0, positives))
            if task == "cloud":
                subsets.extend((task, name, 0, codes) for name, codes in CLOUD_TYPES.items())
            subsets.extend((task, group, g, positives) for g, group in enumerate(self.groups) if g)
        return subsets

    @staticmethod
    def _split_codes(
        counts: np.ndarray, task: str, positives: tuple[int, ...]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Positive and negative histograms from (..., 4 codes, n_bins) counts."""
        pos = sum(counts[..., CODES.index(c), :] for c in positives)
        neg = sum(counts[..., CODES.index(c), :] for c in TASKS[task][1])
        return pos, neg

    def curve(self, task: str = "cloud", subset: str = "all") -> Curve:
        """ROC and PR curves on the pooled test patches for one task and subset."""
        match = [s for s in self._subsets() if s[0] == task and s[1] == subset]
        if not match:
            raise KeyError(f"no subset {subset!r} in task {task!r}")
        test = self._stack("test")
        if test is None:
            raise ValueError("no test patches")
        _, _, group, positives = match[0]
        counts = np.asarray(test[group :: len(self.groups)].sum(axis=0)).reshape(len(CODES), -1)
        pos, neg = self._split_codes(counts, task, positives)
        metrics = _hist_metrics(pos, neg)
        used = (pos + neg) > 0
        tp = np.cumsum(pos)[used]
        fp = np.cumsum(neg)[used]
        n_pos, n_neg = max(pos.sum(), 1), max(neg.sum(), 1)
        return Curve(
            score=self.score,
            reference=self.reference,
            task=task,
            subset=subset,
            fpr=np.concatenate([[0.0], fp / n_neg]),
            tpr=np.concatenate([[0.0], tp / n_pos]),
            precision=np.concatenate([[1.0], tp / (tp + fp)]),
            recall=np.concatenate([[0.0], tp / n_pos]),
            auc=float(metrics["auc"]),
            ap=float(metrics["ap"]),
        )

    def _counts(
        self, block: sp.csr_matrix, weights: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Pooled (4, n) and resampled (n_boot, 4, n) counts of ``block``'s used bins, and them."""
        n_bins = self.binning.n_bins
        point = np.asarray(block.sum(axis=0)).reshape(len(CODES), n_bins)
        used = np.flatnonzero(point.sum(axis=0))
        columns = (np.arange(len(CODES))[:, None] * n_bins + used).ravel()
        boot = (block[:, columns].T @ weights.T).T.reshape(len(weights), len(CODES), used.size)
        return point[:, used], boot, used

    def table(self, n_boot: int = 200, seed: int = 0, ci: float = 0.95) -> pd.DataFrame:
        """Tidy metrics (:data:`COLUMNS`) of every task and subset with bootstrap intervals.

        The bootstrap resamples test patches (and, for the val threshold, val patches) with
        replacement, ``n_boot`` times from ``seed``; the same seed and patch order resample the
        same patches for every accumulator, so intervals of different scores are paired.
        Subsets without any pair are left out; metrics are NaN where one side is empty.
        """
        test = self._stack("test")
        if test is None:
            raise ValueError(f"no test patches for {self.score} vs {self.reference}")
        val = self._stack("val")
        n_groups = len(self.groups)
        rng = np.random.default_rng(seed)
        w_test = _multiplicities(rng, test.shape[0] // n_groups, n_boot)
        val_bins: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        if val is not None:
            w_val = _multiplicities(rng, val.shape[0] // n_groups, n_boot)
            point, boot, used = self._counts(val[0::n_groups], w_val)
            for task, (positives, _) in TASKS.items():
                val_bins[task] = tuple(
                    _hist_metrics(
                        *self._split_codes(counts, task, positives), used, self.binning.n_bins
                    )["best_bin"]
                    for counts in (point, boot)
                )

        rows = []
        counts_by_group: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        for task, subset, group, positives in self._subsets():
            if group not in counts_by_group:
                counts_by_group[group] = self._counts(test[group::n_groups], w_test)
            point_counts, boot_counts, used = counts_by_group[group]
            pos, neg = self._split_codes(point_counts, task, positives)
            n_pos, n_neg = int(pos.sum()), int(neg.sum())
            if n_pos + n_neg == 0:
                continue
            boot_pos, boot_neg = self._split_codes(boot_counts, task, positives)
            values = self._metric_values((pos, neg), (boot_pos, boot_neg), used, val_bins.get(task))
            for metric in METRICS:
                point_value, samples = values[metric]
                low, high = _interval(samples, ci)
                rows.append(
                    (
                        self.score,
                        self.reference,
                        task,
                        subset,
                        metric,
                        point_value,
                        low,
                        high,
                        n_pos,
                        n_neg,
                    )
                )
        return pd.DataFrame(rows, columns=list(COLUMNS))

    def _metric_values(
        self,
        point_hist: tuple[np.ndarray, np.ndarray],
        boot_hist: tuple[np.ndarray, np.ndarray],
        used: np.ndarray,
        val_bins: tuple[np.ndarray, np.ndarray] | None,
    ) -> dict[str, tuple[float, np.ndarray]]:
        """Point value and bootstrap samples of each metric from (pos, neg) histograms."""
        n_bins = self.binning.n_bins
        point = _hist_metrics(*point_hist, used, n_bins)
        boot = _hist_metrics(*boot_hist, used, n_bins)
        values = {
            name: (float(point[name]), boot[name]) for name in ("auc", "ap", "best_f1", "best_iou")
        }
        edge = self.binning.upper_edge
        values["best_threshold"] = (float(edge(point["best_bin"])), edge(boot["best_bin"]))
        if val_bins is None:
            val_bins = (np.array(-1), np.full(boot_hist[0].shape[0], -1))
        val_point, val_boot = val_bins
        values["val_threshold"] = (float(edge(val_point)), edge(val_boot))
        at_point = _metrics_at_bin(*point_hist, val_point, used)
        at_boot = _metrics_at_bin(*boot_hist, val_boot, used)
        for name in ("f1", "iou", "precision", "recall"):
            values[f"{name}_at_val_threshold"] = (float(at_point[name]), at_boot[name])
        return values


class DetectionSuite:
    """Every (score, reference) accumulator of a study, fed one patch at a time.

    A reference's own binary score (``ref:<name>``) is not scored against that reference.
    """

    def __init__(
        self, n_bins: int = DEFAULT_N_BINS, class_labels: Sequence[str] | None = None
    ) -> None:
        self.n_bins = n_bins
        self.class_labels = class_labels
        self.accumulators: dict[tuple[str, str], DetectionAccumulator] = {}

    def add_patch(
        self,
        patch_id: object,
        scores: Mapping[str, np.ndarray],
        references: Mapping[str, np.ndarray],
        labels: np.ndarray | None = None,
        split: str = "test",
    ) -> None:
        """Add one patch's clear-score maps and reference masks (all (T, H, W))."""
        for reference, ref in references.items():
            strata = _strata(ref, labels)
            for score, score_map in scores.items():
                if score == reference_score_name(reference):
                    continue
                self._accumulator(score, reference)._add(patch_id, score_map, strata, split)

    def _accumulator(self, score: str, reference: str) -> DetectionAccumulator:
        """The accumulator of a (score, reference) pair, created on first use."""
        key = (score, reference)
        if key not in self.accumulators:
            self.accumulators[key] = DetectionAccumulator(
                score, reference, binning_for(score, self.n_bins), self.class_labels
            )
        return self.accumulators[key]

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the per-patch counts of every pair to one ``.npz`` (for a later :meth:`load`).

        A workflow scores each patch in a job of its own, saves it, and gathers them all.
        """
        arrays: dict[str, np.ndarray] = {}
        entries = []
        for (score, reference), accumulator in self.accumulators.items():
            for split, patches in accumulator._patches.items():
                for patch_id, counts in patches.items():
                    k = len(entries)
                    entries.append([score, reference, split, patch_id, list(counts.shape)])
                    arrays[f"data_{k}"] = counts.data
                    arrays[f"indices_{k}"] = counts.indices
                    arrays[f"indptr_{k}"] = counts.indptr
        header = {"n_bins": self.n_bins, "class_labels": self.class_labels, "entries": entries}
        np.savez(path, header=np.array(json.dumps(header)), **arrays)

    @classmethod
    def load(cls, paths: Sequence[str | os.PathLike[str]]) -> DetectionSuite:
        """One suite holding the patches of every file written by :meth:`save`, in order."""
        suite: DetectionSuite | None = None
        for path in paths:
            with np.load(path) as archive:
                header = json.loads(str(archive["header"]))
                if suite is None:
                    suite = cls(header["n_bins"], header["class_labels"])
                if header["n_bins"] != suite.n_bins or header["class_labels"] != suite.class_labels:
                    raise ValueError(f"{path}: binning or classes differ from the other files")
                for k, (score, reference, split, patch_id, shape) in enumerate(header["entries"]):
                    patches = suite._accumulator(score, reference)._patches[split]
                    if patch_id in patches:
                        raise ValueError(f"{path}: patch {patch_id} of {split} is already loaded")
                    patches[patch_id] = sp.csr_matrix(
                        (archive[f"data_{k}"], archive[f"indices_{k}"], archive[f"indptr_{k}"]),
                        shape=tuple(shape),
                    )
        if suite is None:
            raise ValueError("no score file to load")
        return suite

    def table(self, n_boot: int = 200, seed: int = 0, ci: float = 0.95) -> pd.DataFrame:
        """All accumulators' tables, concatenated (paired bootstrap: one seed for all)."""
        tables = [acc.table(n_boot, seed, ci) for acc in self.accumulators.values()]
        return (
            pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=list(COLUMNS))
        )

    def curves(self, task: str = "cloud", subset: str = "all") -> list[Curve]:
        """ROC/PR curves of every accumulator for one task and subset."""
        return [acc.curve(task, subset) for acc in self.accumulators.values()]


def sample_by_category(
    score_map: np.ndarray, ref: np.ndarray, n_per_category: int, seed: int = 0
) -> pd.DataFrame:
    """Up to ``n_per_category`` random (pixel, date) scores per reference category.

    Columns ``value`` and ``category`` (:data:`CATEGORY_NAMES`); non-finite scores are dropped.
    """
    rng = np.random.default_rng(seed)
    score_map = np.asarray(score_map, dtype=np.float64)
    ref = np.asarray(ref)
    frames = []
    for code, name in CATEGORY_NAMES.items():
        values = score_map[(ref == code) & np.isfinite(score_map)]
        if values.size > n_per_category:
            values = rng.choice(values, size=n_per_category, replace=False)
        frames.append(pd.DataFrame({"value": values, "category": name}))
    return pd.concat(frames, ignore_index=True)


def _pick(table: pd.DataFrame, score: str, reference: str, task: str, subset: str, metric: str):
    rows = table[
        (table.score == score)
        & (table.reference == reference)
        & (table.task == task)
        & (table.subset == subset)
        & (table.metric == metric)
    ]
    return None if rows.empty or rows.value.isna().all() else rows.iloc[0]


def _grade(auc: float) -> str:
    if auc >= 0.9:
        return "well"
    if auc >= 0.8:
        return "fairly well"
    if auc >= 0.7:
        return "moderately"
    if auc >= 0.6:
        return "poorly"
    return "hardly better than chance"


def _with_ci(row: pd.Series) -> str:
    return f"{row.value:.3f} [{row.ci_low:.3f}, {row.ci_high:.3f}]"


def _summarise_reference(table: pd.DataFrame, reference: str) -> list[str]:
    """The summary lines of one reference (empty when it has no attention AUC)."""
    attention = table[~table.score.str.startswith(REFERENCE_PREFIX)]
    aucs = attention[
        (attention.reference == reference)
        & (attention.task == "cloud")
        & (attention.subset == "all")
        & (attention.metric == "auc")
    ].dropna(subset=["value"])
    if aucs.empty:
        return [f"**Against `{reference}`**: no cloudy and clear pairs to score.", ""]
    best = aucs.loc[aucs.value.idxmax()]
    score = best.score
    prevalence = best.n_positive / (best.n_positive + best.n_negative)
    ap = _pick(table, score, reference, "cloud", "all", "ap")
    lines = [
        f"**Against `{reference}`** ({best.n_positive:,} cloudy vs {best.n_negative:,} clear "
        "test (pixel, date) pairs; 95 % bootstrap intervals over patches):",
        f"- Best attention score `{score}` separates clouds from clear {_grade(best.value)}: "
        f"AUC {_with_ci(best)}, AP {_with_ci(ap) if ap is not None else 'n/a'} "
        f"(chance AP = cloud share {prevalence:.3f}).",
    ]
    f1 = _pick(table, score, reference, "cloud", "all", "f1_at_val_threshold")
    iou = _pick(table, score, reference, "cloud", "all", "iou_at_val_threshold")
    if f1 is not None and iou is not None:
        text = f"- One threshold fixed on the val patches gives test F1 {_with_ci(f1)}, IoU {_with_ci(iou)}"
        oracle = _pick(table, score, reference, "cloud", "all", "best_f1")
        if oracle is not None:
            text += f" (threshold chosen on test itself: F1 {oracle.value:.3f})"
        detectors = table[
            table.score.str.startswith(REFERENCE_PREFIX)
            & (table.reference == reference)
            & (table.task == "cloud")
            & (table.subset == "all")
            & (table.metric == "f1_at_val_threshold")
        ].dropna(subset=["value"])
        if not detectors.empty:
            top = detectors.loc[detectors.value.idxmax()]
            top_iou = _pick(table, top.score, reference, "cloud", "all", "iou_at_val_threshold")
            verdict = (
                "below"
                if f1.ci_high < top.ci_low
                else "above"
                if f1.ci_low > top.ci_high
                else "comparable to"
            )
            text += (
                f"; {verdict} the reference detector `{top.score.removeprefix(REFERENCE_PREFIX)}`: "
                f"F1 {_with_ci(top)}, IoU {_with_ci(top_iou) if top_iou is not None else 'n/a'}"
            )
        lines.append(text + ".")
    parts = [
        f"{label} {_grade(row.value)} (AUC {_with_ci(row)})"
        for label, task, subset in (
            ("thick clouds", "cloud", "thick"),
            ("thin clouds", "cloud", "thin"),
            ("shadows", "shadow", "all"),
        )
        if (row := _pick(table, score, reference, task, subset, "auc")) is not None
    ]
    if parts:
        lines.append(f"- By type, `{score}` separates " + "; ".join(parts) + " from clear pairs.")
    heads = aucs[aucs.score.str.fullmatch(r"head_\d+")].sort_values("value", ascending=False)
    if not heads.empty:
        shown = ", ".join(f"`{row.score}` ({row.value:.3f})" for row in heads.head(3).itertuples())
        worst = heads.iloc[-1]
        lines.append(
            f"- Most cloud-aware heads (cloud AUC): {shown}; least: `{worst.score}` ({worst.value:.3f})."
        )
    return [*lines, ""]


def summarise_answer(table: pd.DataFrame) -> str:
    """A short markdown answer, per reference: how well the best attention score detects clouds.

    Names the best attention score (by cloud-vs-clear test AUC), its AUC and AP with 95 %
    intervals, its test F1/IoU at the val threshold next to the best reference detector's,
    its AUC by cloud type and the most cloud-aware heads.
    """
    attention = table[~table.score.str.startswith(REFERENCE_PREFIX)]
    if attention.empty:
        return "No attention scores in the table: nothing to summarise.\n"
    lines = ["## Is LTAE temporal attention a usable cloud mask?", ""]
    for reference in sorted(attention.reference.unique()):
        lines += _summarise_reference(table, reference)
    lines.append(
        "_Caveats: the best score is picked by its test AUC among several, a mild optimism; AUC, "
        "AP and F1 pool every (pixel, date) pair of the test patches, so long series and cloudy "
        "tiles weigh more; intervals resample whole patches, not pairs._"
    )
    return "\n".join(lines).rstrip() + "\n"
