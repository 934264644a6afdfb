"""Reason codes: the features that push each loan's PD up (and down) most, as readable text.

Input is the tree-SHAP matrix of the raw booster (log-odds, last column the bias). LightGBM
splits categoricals natively, so one column is one feature: no one-hot groups to add up.
"""

from __future__ import annotations

from collections.abc import Collection

import numpy as np
import pandas as pd

from pipeline.core.metadata import FeatureSpec, specs_for_contributions


def reason_codes(
    contribs: np.ndarray,
    X: pd.DataFrame,
    specs: list[FeatureSpec],
    top_k: int = 3,
    protective: bool = False,
    with_points: bool = False,
    exclude: Collection[str] = (),
    currency: str = "",
) -> pd.DataFrame:
    """Top-k reasons per row, same index as `X`.

    currency: the code written before amounts (balance, principal, income).

    exclude: features never named as a reason nor as protective (the protected attributes
        when a config lets the model use them: a decision may not rest on age or gender, so a
        customer is never told it did; US Regulation B, EU non-discrimination law).

    contribs: (n, k + 1) log-odds contributions, columns in the order of `X.columns`, last
        column the bias.
    Returns reason_1..reason_{top_k}: `spec.readable(value)` of the features with the largest
    positive contributions, largest first; "" where fewer than top_k contributions are > 0.
    A missing value is never a reason (nor protective): "income: missing" tells a reader
    nothing to act on, whatever LightGBM's missing branch does.
    With protective=True also protective_1..: the most negative contributions, most negative
    first. With with_points=True each text column `c` gets `c_pd_points` beside it: how many
    PD points (uncalibrated, signed: + raises PD) the feature adds, the loan's PD minus its PD
    without that contribution; NaN where the text is empty. Ties go to the feature that comes
    first in `X`.
    """
    contribs, ordered = specs_for_contributions(contribs, X, specs)
    n, m = X.shape
    out = pd.DataFrame(index=X.index)
    if top_k <= 0:
        return out
    C = contribs[:, :m].copy()
    C[X.isna().to_numpy()] = np.nan  # NaN never ranks as a reason (see top_k_indices)
    C[:, [j for j, c in enumerate(X.columns) if c in set(exclude)]] = np.nan
    logit = np.nansum(contribs, axis=1)
    blocks = [("reason", C)] + ([("protective", -C)] if protective else [])
    for prefix, scores in blocks:
        idx = top_k_indices(scores, top_k)
        for j in range(top_k):
            texts = np.full(n, "", dtype=object)  # fewer features than top_k: stays empty
            points = np.full(n, np.nan)
            if j < idx.shape[1]:
                col = idx[:, j]
                chosen = scores[np.arange(n), col]
                valid = chosen > 0  # False for NaN too
                texts = _texts(X, ordered, col, valid, currency)
                points = np.where(valid, _pd_points(logit, C[np.arange(n), col]), np.nan)
            out[f"{prefix}_{j + 1}"] = pd.Series(texts, index=X.index, dtype="str")
            if with_points:
                out[f"{prefix}_{j + 1}_pd_points"] = pd.Series(points, index=X.index)
    return out


def _pd_points(logit: np.ndarray, contribution: np.ndarray) -> np.ndarray:
    """100 x (PD - PD without `contribution`), both on the raw model's log-odds `logit`."""
    with np.errstate(invalid="ignore", over="ignore"):  # an infinite contribution: NaN points
        return 100.0 * (_sigmoid(logit) - _sigmoid(logit - contribution))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def top_k_indices(scores: np.ndarray, k: int) -> np.ndarray:
    """(n, min(k, m)) column indices of the k largest values per row, largest first; ties to
    the lower column index (argmax returns the first maximum).

    k passes of a row-wise argmax, knocking out each winner: O(n*m*k). For the few reasons
    wanted this beat np.argpartition (+ tie handling) 5x and a full stable argsort 6x on
    200k x 60 (0.05 s against 0.23 s and 0.28 s).
    """
    n, m = scores.shape
    k = min(k, m)
    # A copy where NaN and -inf rank last among the live entries but above the -inf that
    # marks an entry already taken, so no column is ever chosen twice.
    lowest = np.finfo(float).max
    work = np.nan_to_num(scores, copy=True, nan=-lowest, neginf=-lowest, posinf=lowest)
    rows = np.arange(n)
    out = np.empty((n, k), dtype=np.intp)
    for j in range(k):
        out[:, j] = best = work.argmax(axis=1)
        work[rows, best] = -np.inf
    return out


def _texts(
    X: pd.DataFrame, specs: list[FeatureSpec], col: np.ndarray, valid: np.ndarray, currency: str
) -> np.ndarray:
    """spec.readable(value) for each row's chosen column, "" where not valid. Loops over
    features, not rows: each feature's values are formatted in one list comprehension."""
    texts = np.full(len(col), "", dtype=object)
    for f in np.unique(col[valid]):
        rows = np.flatnonzero(valid & (col == f))
        values = X.iloc[rows, f].to_numpy(dtype=object)
        spec = specs[f]
        texts[rows] = [spec.readable(None if pd.isna(v) else v, currency) for v in values]
    return texts


def reasons_for_scoring(
    model,
    X: pd.DataFrame,
    tiers: np.ndarray | pd.Series,
    top_k: int = 3,
    reasons_for: str = "all",
    flagged_tiers: tuple[str, ...] = ("D", "E"),
    protective: bool = False,
    with_points: bool = False,
    exclude: Collection[str] = (),
) -> pd.DataFrame:
    """Reason codes for a scored chunk, computing exact tree SHAP only for the rows that get them.

    model: anything with `contributions(X)` ((n, k + 1) log-odds) and `specs` (the
        `LoanRiskModel` from MLflow).
    X: the prepared frame (`model.prepare(df)`); tiers: the tier of each row (same order).
    reasons_for: "all" or "flagged" (only rows whose tier is in `flagged_tiers`; the others get
        "" in every reason column and NaN points). Exact SHAP costs ~100x a prediction, so
        "flagged" is what makes reasons for a whole portfolio affordable.
    Returns the columns of `reason_codes` (reason_1.., protective_1.., with_points: *_pd_points),
    same index as `X`.
    """
    if reasons_for not in ("all", "flagged"):
        raise ValueError(f"reasons_for must be 'all' or 'flagged', got {reasons_for!r}")
    tiers = np.asarray(tiers)
    if len(tiers) != len(X):
        raise ValueError(f"{len(tiers)} tiers for {len(X)} rows")
    mask = (
        np.ones(len(X), dtype=bool)
        if reasons_for == "all"
        else np.isin(tiers.astype(str), list(flagged_tiers))
    )
    if top_k <= 0:
        return pd.DataFrame(index=X.index)
    scoring = getattr(model, "scoring", None)
    currency = getattr(scoring, "currency", "") or ""

    def codes_for(rows: pd.DataFrame) -> pd.DataFrame:
        return reason_codes(
            model.contributions(rows),
            rows,
            model.specs,
            top_k,
            protective,
            with_points,
            exclude,
            currency,
        )

    if mask.all():
        return codes_for(X)
    names = reason_columns(top_k, protective, with_points)
    out = {
        c: np.full(len(X), np.nan) if c.endswith(POINTS_SUFFIX) else np.full(len(X), "", object)
        for c in names
    }
    if mask.any():
        sub = X.iloc[np.flatnonzero(mask)]
        codes = codes_for(sub)
        for c in names:
            out[c][mask] = codes[c].to_numpy()
    return pd.DataFrame(
        {
            c: pd.Series(v, index=X.index, dtype=float if c.endswith(POINTS_SUFFIX) else "str")
            for c, v in out.items()
        }
    )


POINTS_SUFFIX = "_pd_points"


def reason_columns(top_k: int, protective: bool = False, with_points: bool = False) -> list[str]:
    """The columns `reason_codes` returns for these arguments, in its order."""
    names = []
    for prefix in ("reason", "protective") if protective else ("reason",):
        for j in range(1, max(top_k, 0) + 1):
            names.append(f"{prefix}_{j}")
            if with_points:
                names.append(f"{prefix}_{j}{POINTS_SUFFIX}")
    return names
