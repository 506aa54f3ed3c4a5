"""Per-(pixel, date) "clear" scores derived from LTAE temporal attention.

Every score maps attention ``att`` of shape (n_head, T, H, W), where each head's weights over
the T dates of a pixel sum to 1, to a (T, H, W) float map in which a HIGHER value means the
(pixel, date) is MORE LIKELY CLEAR. Cloud detectors built on them flag "cloudy" where the
clear score is LOW (see :mod:`am4cm.attention.detection`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
from scipy.stats import rankdata

ScoreFn = Callable[[np.ndarray], np.ndarray]

_TINY = np.finfo(np.float64).tiny
_HEAD = re.compile(r"head_(\d+)")


@dataclass(frozen=True)
class ScoreSpec:
    """A clear score: its function, a one-line description and its fixed histogram range.

    ``lo`` and ``hi`` bound the score in histogram units: ``log10(score)`` when ``log_scale``
    (softmax weights span decades, so log bins keep the low end resolved), else the score.
    """

    name: str
    description: str
    fn: ScoreFn
    log_scale: bool
    lo: float
    hi: float


def _check(att: np.ndarray) -> np.ndarray:
    att = np.asarray(att)
    if not np.issubdtype(att.dtype, np.floating):
        att = att.astype(np.float64)
    if att.ndim != 4:
        raise ValueError(f"attention must be (n_head, T, H, W), got shape {att.shape}")
    return att


def mean_attention(att: np.ndarray) -> np.ndarray:
    """Attention averaged over heads."""
    return _check(att).mean(axis=0)


def max_attention(att: np.ndarray) -> np.ndarray:
    """Largest attention any head gives the date."""
    return _check(att).max(axis=0)


def attention_times_t(att: np.ndarray) -> np.ndarray:
    """Mean attention times T: 1 is uniform, so series of different lengths compare."""
    att = _check(att)
    return att.mean(axis=0) * att.shape[1]


def attention_rank(att: np.ndarray) -> np.ndarray:
    """Rank of the date's mean attention within its pixel's series, 0 (lowest) to 1 (highest).

    Ties share their average rank; a single-date series gets 1.
    """
    mean = mean_attention(att)
    n_dates = mean.shape[0]
    if n_dates == 1:
        return np.ones_like(mean)
    return (rankdata(mean, axis=0, method="average") - 1.0) / (n_dates - 1)


def date_median_ratio(att: np.ndarray) -> np.ndarray:
    """Mean attention divided by the patch median of mean attention at that date.

    Normalising per date finds clouds that cover part of a patch; a date cloudy everywhere
    comes out near 1 and is invisible to this score.
    """
    mean = mean_attention(att)
    median = np.median(mean.reshape(mean.shape[0], -1), axis=1)
    return mean / np.maximum(median, _TINY)[:, None, None]


def date_zscore(att: np.ndarray) -> np.ndarray:
    """Mean attention z-scored across the pixels of the patch at each date (0 if constant)."""
    mean = mean_attention(att)
    flat = mean.reshape(mean.shape[0], -1)
    centre = flat.mean(axis=1)[:, None, None]
    spread = flat.std(axis=1)[:, None, None]
    return np.divide(mean - centre, spread, out=np.zeros_like(mean), where=spread > 0)


def head_attention(att: np.ndarray, head: int) -> np.ndarray:
    """Attention of one head alone."""
    att = _check(att)
    if not 0 <= head < att.shape[0]:
        raise ValueError(f"head {head} out of range for {att.shape[0]} heads")
    return att[head]


SCORES: dict[str, ScoreSpec] = {
    spec.name: spec
    for spec in (
        ScoreSpec("mean", "attention averaged over heads", mean_attention, True, -12.0, 0.0),
        ScoreSpec(
            "max", "largest attention any head gives the date", max_attention, True, -12.0, 0.0
        ),
        ScoreSpec(
            "mean_x_T", "mean attention times T (1 = uniform)", attention_times_t, True, -12.0, 2.0
        ),
        ScoreSpec(
            "rank",
            "rank of the date within its pixel's series, 0-1",
            attention_rank,
            False,
            0.0,
            1.0,
        ),
        ScoreSpec(
            "date_median_ratio",
            "mean attention over the patch median at that date",
            date_median_ratio,
            True,
            -10.0,
            6.0,
        ),
        ScoreSpec(
            "date_zscore",
            "mean attention z-scored across the patch's pixels at that date",
            date_zscore,
            False,
            -10.0,
            30.0,
        ),
    )
}
"""The head-independent scores, by name; ``head_k`` scores are built by :func:`get_score`."""


def get_score(name: str) -> ScoreSpec:
    """The spec of a score name: one of :data:`SCORES` or ``head_k`` (k >= 0)."""
    if name in SCORES:
        return SCORES[name]
    match = _HEAD.fullmatch(name)
    if match is None:
        raise KeyError(f"unknown score {name!r}; known: {[*SCORES, 'head_k']}")
    head = int(match.group(1))
    return ScoreSpec(
        name,
        f"attention of head {head} alone",
        lambda att: head_attention(att, head),
        True,
        -12.0,
        0.0,
    )


def score_names(n_head: int) -> list[str]:
    """All score names for a model with ``n_head`` heads: the fixed ones, then ``head_0``..."""
    if n_head < 1:
        raise ValueError(f"n_head must be positive, got {n_head}")
    return [*SCORES, *(f"head_{k}" for k in range(n_head))]


def compute_scores(att: np.ndarray, names: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """Each named clear score of ``att`` (all of :func:`score_names` by default), (T, H, W) each."""
    att = _check(att)
    chosen = score_names(att.shape[0]) if names is None else list(names)
    return {name: get_score(name).fn(att) for name in chosen}
