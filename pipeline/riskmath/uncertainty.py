"""How sure is a test AUC? Bootstrap intervals that resample customers, not rows.

A customer has several loans and appears at several snapshots; their rows share one outcome
history, so resampling rows treats correlated rows as independent and gives intervals that are
too narrow. Resampling whole customers (the cluster bootstrap) keeps each customer's rows
together. The resampling and the percentile interval are scipy's (`scipy.stats.bootstrap`);
percentile, not BCa: BCa's jackknife would refit the statistic once per customer.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats
from sklearn.metrics import roc_auc_score

STATISTICS = ("auc", "gini", "ks")


def _ranking(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    """AUC, Gini and two-sample KS of one (re)sample; NaN when it holds a single class."""
    if y.min() == y.max():
        return np.full(3, np.nan)
    auc = roc_auc_score(y, p)
    ks = stats.ks_2samp(p[y == 1], p[y == 0]).statistic
    return np.array([auc, 2.0 * auc - 1.0, ks])


def cluster_bootstrap(
    y: ArrayLike,
    p: ArrayLike,
    clusters: ArrayLike,
    n_resamples: int = 500,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """Percentile intervals of AUC, Gini and KS, resampling `clusters` (customer ids).

    Returns one row per statistic: statistic, estimate (on the sample as it is), lower, upper,
    n_resamples, n_clusters. A sample so small that a resample can draw a single class gets NaN
    bounds rather than an interval narrowed by dropping those draws.
    """
    y_arr = np.asarray(y, dtype="int64")
    p_arr = np.asarray(p, dtype="float64")
    groups = _rows_by_cluster(clusters)
    low, high = _intervals(
        lambda rows: _ranking(y_arr[rows], p_arr[rows]), groups, n_resamples, confidence, seed
    )
    return pd.DataFrame(
        {
            "statistic": list(STATISTICS),
            "estimate": _ranking(y_arr, p_arr),
            "lower": low,
            "upper": high,
            "n_resamples": n_resamples,
            "n_clusters": len(groups),
        }
    )


def auc_difference(
    y: ArrayLike,
    p_model: ArrayLike,
    p_other: ArrayLike,
    clusters: ArrayLike,
    n_resamples: int = 500,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """AUC of `p_model` minus AUC of `p_other` on the same rows, with a paired percentile
    interval (both scored on each resample of clusters): (difference, lower, upper). An interval
    that holds 0 means the sample cannot tell the two models apart."""
    y_arr = np.asarray(y, dtype="int64")
    a, b = np.asarray(p_model, dtype="float64"), np.asarray(p_other, dtype="float64")

    def diff(rows: np.ndarray) -> np.ndarray:
        if y_arr[rows].min() == y_arr[rows].max():
            return np.array([np.nan])
        return np.array([roc_auc_score(y_arr[rows], a[rows]) - roc_auc_score(y_arr[rows], b[rows])])

    low, high = _intervals(diff, _rows_by_cluster(clusters), n_resamples, confidence, seed)
    everything = np.arange(y_arr.size)
    return float(diff(everything)[0]), float(low[0]), float(high[0])


def _rows_by_cluster(clusters: ArrayLike) -> list[np.ndarray]:
    codes, uniques = pd.factorize(pd.Series(np.asarray(clusters)), sort=True)
    order = np.argsort(codes, kind="stable")
    starts = np.r_[0, np.cumsum(np.bincount(codes, minlength=len(uniques)))]
    return [order[starts[i] : starts[i + 1]] for i in range(len(uniques))]


def _intervals(
    statistic: Callable[[np.ndarray], np.ndarray],
    groups: list[np.ndarray],
    n_resamples: int,
    confidence: float,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval of `statistic(rows)` over resamples of whole groups of rows."""
    res = stats.bootstrap(
        (np.arange(len(groups)),),
        lambda drawn: statistic(np.concatenate([groups[i] for i in drawn])),
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        vectorized=False,
        rng=np.random.default_rng(seed),
    )
    ci = res.confidence_interval
    return np.atleast_1d(np.asarray(ci.low)), np.atleast_1d(np.asarray(ci.high))
