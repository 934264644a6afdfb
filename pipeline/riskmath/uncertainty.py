"""How sure is a test AUC? Bootstrap intervals that resample customers, not rows.

A customer has several loans and appears at several snapshots; their rows share one outcome
history, so resampling rows treats correlated rows as independent and gives intervals that are
too narrow. Resampling whole customers (the cluster bootstrap) keeps each customer's rows
together. The resampling and the percentile interval are scipy's (`scipy.stats.bootstrap`);
percentile, not BCa: BCa's jackknife would refit the statistic once per customer.
"""

from __future__ import annotations

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
    codes, uniques = pd.factorize(pd.Series(clusters), sort=True)
    order = np.argsort(codes, kind="stable")
    starts = np.r_[0, np.cumsum(np.bincount(codes, minlength=len(uniques)))]
    rows_of = [order[starts[i] : starts[i + 1]] for i in range(len(uniques))]

    def statistic(drawn: np.ndarray) -> np.ndarray:
        idx = np.concatenate([rows_of[i] for i in drawn])
        return _ranking(y_arr[idx], p_arr[idx])

    res = stats.bootstrap(
        (np.arange(len(uniques)),),
        statistic,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        vectorized=False,
        rng=np.random.default_rng(seed),
    )
    low, high = np.asarray(res.confidence_interval.low), np.asarray(res.confidence_interval.high)
    return pd.DataFrame(
        {
            "statistic": list(STATISTICS),
            "estimate": _ranking(y_arr, p_arr),
            "lower": low,
            "upper": high,
            "n_resamples": n_resamples,
            "n_clusters": len(uniques),
        }
    )
