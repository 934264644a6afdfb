"""Credit-risk metrics for a PD model: discrimination, calibration and gains.

Conventions used throughout:
- `y` is the observed outcome, a 1-D array of 0/1 (1 = default); `p` is the predicted
  probability of default (PD) in [0, 1], same length. A higher PD means a riskier loan.
- Functions are vectorised (one sort, cumulative sums) and deterministic: ties in PD are always
  handled as a group, never split by the input order.
- A sample with a single class (no defaults, or only defaults) gives NaN for the ranking
  metrics (AUC, Gini, KS, PR-AUC) instead of raising, so a small segment or an early
  snapshot does not break a report.
- Bad array input (different lengths, labels other than 0/1, PD outside [0, 1] or NaN) raises
  `ValueError`; a column missing from a frame raises `pipeline.core.errors.DataError`.

Population stability (drift) is in `pipeline.riskmath.stability`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats

from pipeline.core.errors import DataError

__all__ = [
    "KS",
    "LOG_LOSS_EPS",
    "SUMMARY_KEYS",
    "auc",
    "brier",
    "calibration_table",
    "default_rate",
    "gains_table",
    "gini",
    "ks",
    "ks_curve",
    "log_loss",
    "pr_auc",
    "require_columns",
    "segment_summary",
    "summary",
]

# PD is clipped to [LOG_LOSS_EPS, 1 - LOG_LOSS_EPS] before taking logs.
LOG_LOSS_EPS = 1e-15

SUMMARY_KEYS = (
    "auc",
    "gini",
    "ks",
    "ks_cutoff",
    "brier",
    "log_loss",
    "pr_auc",
    "default_rate",
    "mean_pd",
    "n",
    "n_defaults",
)


class KS(NamedTuple):
    """Kolmogorov-Smirnov separation of defaults and non-defaults.

    statistic: max over cut-offs t of (share of defaults with PD >= t) - (share of non-defaults
        with PD >= t), in [0, 1]; NaN for a single-class sample.
    cutoff: the PD t at which the maximum is reached (loans with PD >= cutoff are flagged);
        the highest such PD if several reach it; NaN when the statistic is 0 or NaN.
    """

    statistic: float
    cutoff: float


# --------------------------------------------------------------------------------------------
# Discrimination and accuracy
# --------------------------------------------------------------------------------------------


def summary(y: ArrayLike, p: ArrayLike) -> dict[str, float]:
    """All scalar metrics of one sample, keyed by `SUMMARY_KEYS`.

    Keys: auc, gini, ks, ks_cutoff, brier, log_loss, pr_auc, default_rate, mean_pd (average PD,
    to compare with default_rate: calibration in the large), n (rows), n_defaults. With a
    single-class `y` the ranking metrics (auc, gini, ks, ks_cutoff, pr_auc) are NaN.
    """
    y_arr, p_arr = check_outcomes(y, p)
    # One sort serves AUC, KS and average precision.
    if _single_class(y_arr):
        a, k, ap = math.nan, KS(math.nan, math.nan), math.nan
    else:
        curve = _cumulative_counts(y_arr, p_arr)
        a, k, ap = _auc_from(curve), _ks_from(curve), _ap_from(curve)
    return {
        "auc": a,
        "gini": 2.0 * a - 1.0,
        "ks": k.statistic,
        "ks_cutoff": k.cutoff,
        "brier": brier(y_arr, p_arr),
        "log_loss": log_loss(y_arr, p_arr),
        "pr_auc": ap,
        "default_rate": float(y_arr.mean()),
        "mean_pd": float(p_arr.mean()),
        "n": int(y_arr.size),
        "n_defaults": int(y_arr.sum()),
    }


def auc(y: ArrayLike, p: ArrayLike) -> float:
    """Area under the ROC curve: P(PD of a random default > PD of a random non-default).

    Ties count one half. NaN when `y` has a single class.
    """
    y_arr, p_arr = check_outcomes(y, p)
    if _single_class(y_arr):
        return math.nan
    return _auc_from(_cumulative_counts(y_arr, p_arr))


def gini(y: ArrayLike, p: ArrayLike) -> float:
    """Gini coefficient (accuracy ratio) = 2 * AUC - 1, in [-1, 1]; NaN for a single class."""
    return 2.0 * auc(y, p) - 1.0


def ks(y: ArrayLike, p: ArrayLike) -> KS:
    """Kolmogorov-Smirnov statistic and the PD cut-off where it is reached (see `KS`).

    The statistic is one-sided (defaults expected at higher PD): a model that ranks backwards
    gets 0, not a high KS. Tied PDs move together across the cut-off. For a model that ranks
    the right way it equals the two-sample KS of the PDs of defaults vs non-defaults.
    """
    y_arr, p_arr = check_outcomes(y, p)
    if _single_class(y_arr):
        return KS(math.nan, math.nan)
    return _ks_from(_cumulative_counts(y_arr, p_arr))


def ks_curve(y: ArrayLike, p: ArrayLike) -> pd.DataFrame:
    """Cumulative shares behind KS and ROC, one row per distinct PD, highest PD first.

    Columns: cutoff (PD t), cum_bad_share (share of defaults with PD >= t, the true positive
    rate), cum_good_share (share of non-defaults with PD >= t, the false positive rate), gap
    (their difference; its maximum is the KS). Raises ValueError for a single-class `y`.
    """
    y_arr, p_arr = check_outcomes(y, p)
    if _single_class(y_arr):
        raise ValueError("ks_curve needs both defaults and non-defaults in y")
    curve = _cumulative_counts(y_arr, p_arr)
    bad_share, good_share = curve.bad_share, curve.good_share
    return pd.DataFrame(
        {
            "cutoff": curve.cutoffs,
            "cum_bad_share": bad_share,
            "cum_good_share": good_share,
            "gap": bad_share - good_share,
        }
    )


def brier(y: ArrayLike, p: ArrayLike) -> float:
    """Brier score: mean squared error of the PD against the 0/1 outcome, in [0, 1]."""
    y_arr, p_arr = check_outcomes(y, p)
    return float(np.mean((p_arr - y_arr) ** 2))


def log_loss(y: ArrayLike, p: ArrayLike) -> float:
    """Mean negative log-likelihood (nats): -mean(y ln p + (1 - y) ln(1 - p)).

    PD is clipped to [LOG_LOSS_EPS, 1 - LOG_LOSS_EPS] so a confident miss costs about 34.5
    nats instead of infinity.
    """
    y_arr, p_arr = check_outcomes(y, p)
    q = np.clip(p_arr, LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS)
    return float(-np.mean(y_arr * np.log(q) + (1.0 - y_arr) * np.log1p(-q)))


def pr_auc(y: ArrayLike, p: ArrayLike) -> float:
    """Area under the precision-recall curve as average precision (sklearn's definition):
    sum over distinct PD cut-offs of (recall step) * precision, tied PDs flagged together.
    A random model scores about the default rate.
    NaN when `y` has a single class.
    """
    y_arr, p_arr = check_outcomes(y, p)
    if _single_class(y_arr):
        return math.nan
    return _ap_from(_cumulative_counts(y_arr, p_arr))


def default_rate(y: ArrayLike) -> float:
    """Observed default rate: share of 1s in `y`."""
    y_arr = _check_labels(y)
    return float(y_arr.mean())


def segment_summary(
    df: pd.DataFrame, y_col: str, p_col: str, by: str | Sequence[str]
) -> pd.DataFrame:
    """`summary()` per segment: one row per value (combination) of `by`, sorted by it.

    Columns: the `by` columns, share (segment rows / all rows), then `SUMMARY_KEYS`. A missing
    segment value is its own row. Single-class segments get NaN ranking metrics.
    """
    by_cols = [by] if isinstance(by, str) else list(by)
    require_columns(df, [y_col, p_col, *by_cols], "segment_summary")
    if df.empty:
        raise ValueError("segment_summary: the frame is empty")
    rows = []
    grouped = df.groupby(by_cols, dropna=False, sort=True, observed=True)
    for key, part in grouped:
        keys = key if isinstance(key, tuple) else (key,)
        row: dict[str, Any] = dict(zip(by_cols, keys, strict=True))
        row["share"] = len(part) / len(df)
        row.update(summary(part[y_col].to_numpy(), part[p_col].to_numpy()))
        rows.append(row)
    return pd.DataFrame(rows, columns=[*by_cols, "share", *SUMMARY_KEYS])


# --------------------------------------------------------------------------------------------
# Gains and calibration tables
# --------------------------------------------------------------------------------------------


def gains_table(y: ArrayLike, p: ArrayLike, n_bins: int = 10) -> pd.DataFrame:
    """Gains (lift) table by PD bin, riskiest bin first (decile 1 = highest PDs).

    Binning is by rank: each loan gets the average rank r (1 = highest PD) of its PD among
    the n loans, and bin ceil(n_bins * r / n). Loans with equal PD share r, so they always land
    in the same bin whatever the input order; bins are then only roughly equal in size, and a
    large tie group can leave a bin empty. Empty bins are dropped and the rest numbered
    1..k consecutively, so the table has k <= n_bins rows.

    Columns: decile, n, n_defaults, default_rate, min_pd, max_pd, mean_pd, cum_n, cum_defaults,
    cum_capture (share of all defaults in this and riskier bins), lift (bin default rate /
    overall default rate), cum_lift (cumulative default rate / overall). Capture and lift are
    NaN when the sample has no defaults.
    """
    y_arr, p_arr = check_outcomes(y, p)
    codes = _rank_bins(p_arr, n_bins, descending=True)
    table = _bin_stats(y_arr, p_arr, codes).rename(columns={"bin": "decile"})
    total_defaults = y_arr.sum()
    overall = y_arr.mean()
    table["cum_n"] = table["n"].cumsum()
    table["cum_defaults"] = table["n_defaults"].cumsum()
    with np.errstate(divide="ignore", invalid="ignore"):
        table["cum_capture"] = table["cum_defaults"] / total_defaults
        table["lift"] = table["default_rate"] / overall
        table["cum_lift"] = (table["cum_defaults"] / table["cum_n"]) / overall
    return table[
        [
            "decile",
            "n",
            "n_defaults",
            "default_rate",
            "min_pd",
            "max_pd",
            "mean_pd",
            "cum_n",
            "cum_defaults",
            "cum_capture",
            "lift",
            "cum_lift",
        ]
    ]


def calibration_table(y: ArrayLike, p: ArrayLike, n_bins: int = 10) -> pd.DataFrame:
    """Reliability table: PD quantile bins (lowest PD first), mean predicted vs observed rate.

    Bins use the same rank rule as `gains_table` (ties kept together, empty bins dropped), in
    ascending PD order. Columns: bin (1..k), n, n_defaults, mean_pd, observed_rate, min_pd,
    max_pd, expected_defaults (sum of PD), observed_lo / observed_hi (Wilson 95% interval of
    the observed rate), hl_contribution ((O - E)^2 / (n * mean_pd * (1 - mean_pd))).

    `table.attrs` holds the Hosmer-Lemeshow test: hosmer_lemeshow (sum of the contributions,
    approximately chi-square with k - 2 degrees of freedom for a well calibrated model),
    hl_dof, hl_pvalue (NaN when k <= 2).
    """
    y_arr, p_arr = check_outcomes(y, p)
    codes = _rank_bins(p_arr, n_bins, descending=False)
    table = _bin_stats(y_arr, p_arr, codes).rename(columns={"default_rate": "observed_rate"})
    table["expected_defaults"] = np.bincount(codes, weights=p_arr)
    lo, hi = _wilson(table["n_defaults"].to_numpy(), table["n"].to_numpy())
    table["observed_lo"] = lo
    table["observed_hi"] = hi
    mean_pd = table["mean_pd"].to_numpy()
    with np.errstate(divide="ignore", invalid="ignore"):
        table["hl_contribution"] = (table["n_defaults"] - table["expected_defaults"]) ** 2 / (
            table["n"] * mean_pd * (1.0 - mean_pd)
        )
    table = table[
        [
            "bin",
            "n",
            "n_defaults",
            "mean_pd",
            "observed_rate",
            "min_pd",
            "max_pd",
            "expected_defaults",
            "observed_lo",
            "observed_hi",
            "hl_contribution",
        ]
    ]
    statistic = float(table["hl_contribution"].sum())
    dof = len(table) - 2
    table.attrs["hosmer_lemeshow"] = statistic
    table.attrs["hl_dof"] = dof
    table.attrs["hl_pvalue"] = float(stats.chi2.sf(statistic, dof)) if dof > 0 else math.nan
    return table


# --------------------------------------------------------------------------------------------
# Population stability
# --------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------------


def check_outcomes(y: ArrayLike, p: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert to float64 1-D arrays of equal, non-zero length."""
    y_arr = _check_labels(y)
    p_arr = np.asarray(p, dtype="float64")
    if p_arr.ndim != 1:
        raise ValueError(f"p must be 1-D, got shape {p_arr.shape}")
    if p_arr.size != y_arr.size:
        raise ValueError(f"y and p differ in length: {y_arr.size} vs {p_arr.size}")
    if np.isnan(p_arr).any():
        raise ValueError(f"p holds {int(np.isnan(p_arr).sum())} NaN values")
    if p_arr.min() < 0 or p_arr.max() > 1:
        raise ValueError(f"p must be a probability in [0, 1], got [{p_arr.min()}, {p_arr.max()}]")
    return y_arr, p_arr


def _check_labels(y: ArrayLike) -> np.ndarray:
    y_arr = np.asarray(y, dtype="float64")
    if y_arr.ndim != 1:
        raise ValueError(f"y must be 1-D, got shape {y_arr.shape}")
    if y_arr.size == 0:
        raise ValueError("y is empty")
    bad = ~((y_arr == 0) | (y_arr == 1))
    if bad.any():
        raise ValueError(f"y must hold only 0 and 1; found {np.unique(y_arr[bad])[:5].tolist()}")
    return y_arr


def _single_class(y: np.ndarray) -> bool:
    return bool(y.min() == y.max())


class _Curve(NamedTuple):
    """Counts flagged at each distinct PD cut-off, highest PD first (cut-off = flag PD >= t)."""

    cutoffs: np.ndarray
    tp: np.ndarray  # defaults flagged
    fp: np.ndarray  # non-defaults flagged

    @property
    def bad_share(self) -> np.ndarray:
        return self.tp / self.tp[-1]

    @property
    def good_share(self) -> np.ndarray:
        return self.fp / self.fp[-1]


def _cumulative_counts(y: np.ndarray, p: np.ndarray) -> _Curve:
    """One sort by PD, descending; needs both classes present."""
    order = np.argsort(-p, kind="stable")
    ps, ys = p[order], y[order]
    # The last row of each run of equal PD: a cut-off flags the whole tie group at once.
    ends = np.r_[np.flatnonzero(np.diff(ps)), ps.size - 1]
    tp = np.cumsum(ys)[ends]
    return _Curve(ps[ends], tp, (ends + 1) - tp)


def _auc_from(curve: _Curve) -> float:
    """Trapezoid area under the tie-grouped ROC = Mann-Whitney AUC with ties counted 1/2."""
    return float(np.trapezoid(np.r_[0.0, curve.bad_share], np.r_[0.0, curve.good_share]))


def _ks_from(curve: _Curve) -> KS:
    gap = curve.bad_share - curve.good_share
    best = int(np.argmax(gap))  # first maximum = highest PD cut-off reaching it
    if gap[best] <= 0:
        return KS(0.0, math.nan)
    return KS(float(gap[best]), float(curve.cutoffs[best]))


def _ap_from(curve: _Curve) -> float:
    """Average precision: sum over distinct cut-offs of (recall step) * precision."""
    precision = curve.tp / (curve.tp + curve.fp)
    return float(np.sum(np.diff(np.r_[0.0, curve.bad_share]) * precision))


def _rank_bins(p: np.ndarray, n_bins: int, descending: bool) -> np.ndarray:
    """Bin codes 0..k-1 (consecutive, empty bins dropped) from the average rank of each PD."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    n = p.size
    # Average ranks are multiples of 1/2: work with 2r to keep the arithmetic exact in integers.
    r2 = np.rint(2.0 * stats.rankdata(-p if descending else p, method="average")).astype(np.int64)
    raw = -(-(n_bins * r2) // (2 * n)) - 1  # ceil(n_bins * r / n) - 1
    _, codes = np.unique(raw, return_inverse=True)
    return codes.astype(np.int64)


def _bin_stats(y: np.ndarray, p: np.ndarray, codes: np.ndarray) -> pd.DataFrame:
    """Counts, default rate and PD range per bin code (codes 0..k-1, all non-empty)."""
    n = np.bincount(codes)
    d = np.bincount(codes, weights=y)
    frame = pd.DataFrame({"code": codes, "p": p})
    rng = frame.groupby("code", sort=True)["p"].agg(["min", "max"])
    return pd.DataFrame(
        {
            "bin": np.arange(1, n.size + 1),
            "n": n.astype(np.int64),
            "n_defaults": d.astype(np.int64),
            "default_rate": d / n,
            "min_pd": rng["min"].to_numpy(),
            "max_pd": rng["max"].to_numpy(),
            "mean_pd": np.bincount(codes, weights=p) / n,
        }
    )


def _wilson(k: np.ndarray, n: np.ndarray, z: float = 1.959964) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for k successes out of n (95% by default), inside [0, 1].

    The clip only removes rounding: at k = 0 the lower bound is 0 in exact arithmetic but
    comes out as -3e-18 in floating point."""
    rate = k / n
    denom = 1.0 + z**2 / n
    centre = (rate + z**2 / (2 * n)) / denom
    half = z * np.sqrt(rate * (1 - rate) / n + z**2 / (4 * n**2)) / denom
    return np.clip(centre - half, 0.0, 1.0), np.clip(centre + half, 0.0, 1.0)


def require_columns(df: pd.DataFrame, columns: Sequence[str], where: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise DataError(f"{where}: missing column(s) {missing}")
