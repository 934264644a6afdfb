"""Does the data agree with the direction a monotone constraint imposes?

A constraint forces the model's PD to move one way with a feature. When the training data's own
trend goes the other way (reminders go to customers already in trouble, so more reminders come
with more default), the constraint does not make the model prudent: it deletes the feature.
Each constrained feature's univariate trend on the training rows is measured with Kendall's
tau-b between the feature and the label (rank-based, ties handled, missing values left out) and
summarised by the default rate of its lowest and highest quintile.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
from scipy import stats

ALPHA = 0.01  # a trend is "clear" at p < 0.01: 38 features are tested on the same rows
COLUMNS = (
    "feature",
    "expected",
    "data_trend",
    "tau",
    "p_value",
    "rate_lowest_quintile",
    "rate_highest_quintile",
    "verdict",
    "light",
)
_LIGHT = {"agrees": "green", "no clear trend": "amber", "contradicts": "red"}


def direction_check(
    X: pd.DataFrame, y: np.ndarray, expected: Mapping[str, str], alpha: float = ALPHA
) -> pd.DataFrame:
    """One row per feature of `expected` ({name: "raises" | "lowers"}, the PD's direction as
    the feature grows) found in `X` as a number: the data's trend and the verdict."""
    y = np.asarray(y, dtype=float)
    rows = []
    for name, direction in expected.items():
        if name not in X.columns or not pd.api.types.is_numeric_dtype(X[name]):
            continue
        x = X[name].to_numpy(dtype=float)
        ok = ~np.isnan(x)
        tau, p = stats.kendalltau(x[ok], y[ok]) if ok.sum() > 2 else (math.nan, math.nan)
        trend = "flat"
        if not math.isnan(p) and p < alpha:
            trend = "raises" if tau > 0 else "lowers"
        verdict = (
            "no clear trend"
            if trend == "flat"
            else "agrees"
            if trend == direction
            else "contradicts"
        )
        low, high = _end_rates(x[ok], y[ok])
        rows.append(
            {
                "feature": name,
                "expected": direction,
                "data_trend": trend,
                "tau": tau,
                "p_value": p,
                "rate_lowest_quintile": low,
                "rate_highest_quintile": high,
                "verdict": verdict,
                "light": _LIGHT[verdict],
            }
        )
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _end_rates(x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Default rate of the rows in the lowest and in the highest fifth by the feature (ties
    stay together, so a count that is mostly 0 has one large lowest group)."""
    if x.size == 0:
        return math.nan, math.nan
    share = stats.rankdata(x, method="average") / x.size
    low = share <= 0.2 if (share <= 0.2).any() else x == x.min()
    high = share > 0.8 if (share > 0.8).any() else x == x.max()
    return float(y[low].mean()), float(y[high].mean())
