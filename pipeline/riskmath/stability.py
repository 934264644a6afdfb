"""Population stability (PSI): how far a distribution has moved from the training one.

PSI works from a JSON-serialisable *reference* of the expected (training) distribution, so the
score stage can check drift without the training data: `reference_bins(train_values)` -> dict,
then `psi_from_reference(ref, new_values)`. `psi(expected, actual)` is exactly
`psi_from_reference(reference_bins(expected), actual)`. Numeric values are binned on the
reference's quantiles, categories by value (unseen ones in their own bin).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike

from pipeline.riskmath.metrics import require_columns

# Share used in place of 0 for a PSI bin that is empty on one side (see `psi_table`).
PSI_EPS = 1e-4

# PSI status thresholds (industry rule of thumb): < 0.1 stable, 0.1-0.25 warning, > 0.25 alert.
PSI_WARNING = 0.1

PSI_ALERT = 0.25

_MISSING_LABEL = "<missing>"

_UNSEEN_LABEL = "<unseen>"

_REFERENCE_VERSION = 1


def psi(expected: ArrayLike, actual: ArrayLike, bins: int = 10) -> float:
    """Population stability index of `actual` against `expected` (see `psi_table`).

    Same code path as `psi_from_reference(reference_bins(expected, bins), actual)`.
    """
    return psi_from_reference(reference_bins(expected, bins), actual)


def psi_table(expected: ArrayLike, actual: ArrayLike, bins: int = 10) -> pd.DataFrame:
    """Per-bin PSI of `actual` against `expected`; the `psi` column sums to `psi()`.

    PSI = sum over bins of (a - e) * ln(a / e), with e and a the shares of rows of the expected
    and actual samples in the bin (shares of all rows, missing values included).

    Bins (see `reference_bins`):
    - numeric: cut points at the expected distribution's quantiles, right-closed intervals
      (lo, hi], the outer bins open so actual values outside the training range still count;
    - categorical (str/object/category): one bin per category seen in `expected`; categories
      found only in `actual` are pooled into one `<unseen>` bin (expected share 0);
    - missing values (NaN/None/NA): their own `<missing>` bin, shown when either side has any.
    Empty bins (the convention, and why): a share of 0 on either side is replaced by PSI_EPS
    (1e-4) inside the formula, as evidently's PSI and the widely copied `calculate_psi` do, so
    an empty bin adds a large but finite term, e.g. 20% of actual rows in an unseen category
    adds (0.2 - 1e-4) * ln(0.2 / 1e-4) = 1.52. The shares are not renormalised after that.
    Other tools differ: toad aligns the two share series by bin and sums with NaN skipped, so a
    bin empty on one side adds nothing (a range of values that vanished goes unseen). An empty
    bin is a real shift (the PSI is infinite without a floor) whose size the floor sets, so
    `psi_frame_from_reference` reports both parts: the PSI over the bins populated on both
    sides (toad's figure) and the bins empty on one side, with their count.

    Columns: bin (label), lower, upper (numeric bin bounds, NaN otherwise), expected_share,
    actual_share, actual_n, psi.
    """
    return psi_table_from_reference(reference_bins(expected, bins), actual)


def reference_bins(values: ArrayLike, bins: int = 10) -> dict[str, Any]:
    """The expected (training) distribution of one variable, as a JSON-serialisable dict.

    Numeric (incl. bool): {"kind": "numeric", "edges": [...], "shares": [...],
    "missing_share": m, "n": n, "version": 1}. `edges` are the distinct `bins`-quantiles of
    the non-missing values (inverted-CDF method, so each edge is an observed value), without
    any edge at or above the maximum; bin i is (edges[i-1], edges[i]] with edges[-1] = -inf
    and edges[k] = +inf, so every expected bin holds at least one row. A variable with many
    ties (a flag, a count) gets fewer than `bins` bins.
    Categorical: {"kind": "categorical", "categories": [...] (as str, sorted), "shares": [...],
    "missing_share": m, "n": n, "version": 1}.
    Shares are fractions of all n rows: sum(shares) + missing_share = 1.
    """
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    series = _as_series(values)
    if series.size == 0:
        raise ValueError("reference_bins: no values")
    n = int(series.size)
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        raise ValueError("reference_bins: dates are not supported; convert to a number (age, days)")
    if _is_numeric(series):
        x = series.to_numpy(dtype="float64", na_value=np.nan)
        present = x[~np.isnan(x)]
        edges = _quantile_edges(present, bins)
        counts = np.bincount(np.searchsorted(edges, present, side="left"), minlength=edges.size + 1)
        return {
            "kind": "numeric",
            "edges": [float(e) for e in edges],
            "shares": [float(c / n) for c in counts],
            "missing_share": float((n - present.size) / n),
            "n": n,
            "version": _REFERENCE_VERSION,
        }
    missing = series.isna().to_numpy()
    counts = series[~missing].astype(str).value_counts(sort=False).sort_index()
    return {
        "kind": "categorical",
        "categories": [str(c) for c in counts.index],
        "shares": [float(c / n) for c in counts.to_numpy()],
        "missing_share": float(missing.sum() / n),
        "n": n,
        "version": _REFERENCE_VERSION,
    }


def psi_from_reference(ref: Mapping[str, Any], actual: ArrayLike) -> float:
    """PSI of `actual` against a stored `reference_bins` dict (no training data needed)."""
    return float(psi_table_from_reference(ref, actual)["psi"].sum())


def psi_table_from_reference(ref: Mapping[str, Any], actual: ArrayLike) -> pd.DataFrame:
    """Per-bin PSI of `actual` against a stored `reference_bins` dict (columns as `psi_table`)."""
    series = _as_series(actual)
    if series.size == 0:
        raise ValueError("psi: the actual sample is empty")
    kind = ref.get("kind")
    n = series.size
    if kind == "numeric":
        if not _is_numeric(series):
            raise ValueError(f"psi: the reference is numeric but the values are {series.dtype}")
        edges = np.asarray(ref["edges"], dtype="float64")
        x = series.to_numpy(dtype="float64", na_value=np.nan)
        present = x[~np.isnan(x)]
        counts = np.bincount(np.searchsorted(edges, present, side="left"), minlength=edges.size + 1)
        lower = np.r_[-np.inf, edges]
        upper = np.r_[edges, np.inf]
        labels = [
            f"({lo:.6g}, {hi:.6g}{')' if np.isinf(hi) else ']'}"
            for lo, hi in zip(lower, upper, strict=True)
        ]
        n_missing = n - present.size
        n_unseen = 0
    elif kind == "categorical":
        missing = series.isna().to_numpy()
        observed = series[~missing].astype(str)
        labels = list(ref["categories"])
        counts_by_cat = observed.value_counts(sort=False)
        counts = counts_by_cat.reindex(labels, fill_value=0).to_numpy()
        lower = upper = np.full(len(labels), np.nan)
        n_missing = int(missing.sum())
        n_unseen = int(observed.size - counts.sum())
    else:
        raise ValueError(f"psi: unknown reference kind {kind!r} (expected numeric or categorical)")

    expected_share = list(ref["shares"])
    actual_n = [int(c) for c in counts]
    bounds_lo, bounds_hi = list(lower), list(upper)
    if ref["missing_share"] > 0 or n_missing > 0:
        labels.append(_MISSING_LABEL)
        expected_share.append(float(ref["missing_share"]))
        actual_n.append(int(n_missing))
        bounds_lo.append(np.nan)
        bounds_hi.append(np.nan)
    if n_unseen > 0:
        labels.append(_UNSEEN_LABEL)
        expected_share.append(0.0)
        actual_n.append(n_unseen)
        bounds_lo.append(np.nan)
        bounds_hi.append(np.nan)

    e = np.asarray(expected_share, dtype="float64")
    a = np.asarray(actual_n, dtype="float64") / n
    e_safe = np.where(e > 0, e, PSI_EPS)
    a_safe = np.where(a > 0, a, PSI_EPS)
    return pd.DataFrame(
        {
            "bin": labels,
            "lower": np.asarray(bounds_lo, dtype="float64"),
            "upper": np.asarray(bounds_hi, dtype="float64"),
            "expected_share": e,
            "actual_share": a,
            "actual_n": np.asarray(actual_n, dtype="int64"),
            "psi": (a_safe - e_safe) * np.log(a_safe / e_safe),
        }
    )


def psi_status(value: float) -> str:
    """'stable' (< 0.1), 'warning' (0.1 to 0.25 inclusive), 'alert' (> 0.25), 'n/a' for NaN."""
    if math.isnan(value):
        return "n/a"
    if value < PSI_WARNING:
        return "stable"
    if value <= PSI_ALERT:
        return "warning"
    return "alert"


def psi_frame(
    train_df: pd.DataFrame,
    test_df: pd.DataFrame,
    columns: Sequence[str] | None = None,
    bins: int = 10,
) -> pd.DataFrame:
    """PSI of each column of `test_df` against `train_df`, largest first.

    columns: default all columns of `train_df`. Returns columns feature, psi, status
    (see `psi_status`). Same code path as `psi_frame_from_reference`.
    """
    cols = list(train_df.columns) if columns is None else list(columns)
    require_columns(train_df, cols, "psi_frame (train)")
    return psi_frame_from_reference(reference_bins_frame(train_df, cols, bins), test_df)


def reference_bins_frame(
    df: pd.DataFrame, columns: Sequence[str] | None = None, bins: int = 10
) -> dict[str, dict[str, Any]]:
    """`reference_bins` for each column (default all), keyed by column name; JSON-serialisable."""
    cols = list(df.columns) if columns is None else list(columns)
    require_columns(df, cols, "reference_bins_frame")
    return {c: reference_bins(df[c], bins) for c in cols}


def psi_frame_from_reference(
    refs: Mapping[str, Mapping[str, Any]], df: pd.DataFrame
) -> pd.DataFrame:
    """PSI of each referenced column of `df`, largest first, ties by feature name. Columns:
    feature, psi, status, psi_populated (the part from bins with rows on both sides),
    empty_bins (bins empty on one side: their part, psi - psi_populated, is set by the
    PSI_EPS floor; see `psi_table`)."""
    require_columns(df, list(refs), "psi_frame")
    rows = []
    for name, ref in refs.items():
        table = psi_table_from_reference(ref, df[name])
        empty = (table["expected_share"] == 0) | (table["actual_n"] == 0)
        populated = float(table.loc[~empty, "psi"].sum())
        rows.append((name, float(table["psi"].sum()), populated, int(empty.sum())))
    cols = ["feature", "psi", "psi_populated", "empty_bins"]
    out = pd.DataFrame(rows, columns=cols).astype({"psi": "float64", "empty_bins": "int64"})
    out.insert(2, "status", [psi_status(v) for v in out["psi"]])
    out = out.sort_values(["psi", "feature"], ascending=[False, True], kind="stable")
    return out.reset_index(drop=True)


def _quantile_edges(x: np.ndarray, bins: int) -> np.ndarray:
    """Distinct interior quantile cut points that are observed values below the maximum."""
    if x.size == 0 or bins == 1:
        return np.empty(0, dtype="float64")
    qs = np.arange(1, bins) / bins
    edges = np.unique(np.quantile(x, qs, method="inverted_cdf")).astype("float64")
    return edges[np.isfinite(edges) & (edges < x.max())]


def _as_series(values: ArrayLike) -> pd.Series:
    if isinstance(values, pd.Series):
        return values.reset_index(drop=True)
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ValueError(f"expected 1-D values, got shape {arr.shape}")
    return pd.Series(arr)


def _is_numeric(series: pd.Series) -> bool:
    """Numbers and booleans are binned by quantile; text, categories and dates are not numeric."""
    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        return False
    if pd.api.types.is_bool_dtype(dtype) or pd.api.types.is_numeric_dtype(dtype):
        return True
    if pd.api.types.is_object_dtype(dtype):
        return pd.api.types.infer_dtype(series, skipna=True) in (
            "integer",
            "floating",
            "mixed-integer-float",
            "boolean",
            "decimal",
            "empty",
        )
    return False
