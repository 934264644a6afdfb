"""Heterogeneous effects: how a lever's effect changes with a few effect modifiers.

The final stage of a linear DR-learner (EconML's LinearDRLearner): the cross-fitted doubly
robust scores of the lever's own fit (`inference.fit_dr`) regressed on a constant and the
modifiers, which are pre-window controls the nuisance models already condition on. So the
conditional effect theta(x) = b0 + b'z(x) costs no further nuisance fit, and its covariance is
clustered by customer (statsmodels' cluster-robust OLS), which econml's own final stage (HC1,
rows independent) is not. z standardises the modifiers (a missing one sits at its median, z = 0),
so b0 is the effect at the median customer and each b the change per standard deviation.

The result (`LinearCate`) is plain numbers: the scoring side computes a loan's effect and its
interval from its features without importing the study (`pipeline.scoring.next_best_action`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
import statsmodels.api as sm


@dataclass(frozen=True)
class LinearCate:
    """theta(x) = coef[0] + sum_j coef[j + 1] * (x_j - center_j) / scale_j, probability units;
    cov the coefficients' customer-clustered covariance; a missing x_j counts as center_j."""

    lever: str
    modifiers: list[str]
    center: list[float]
    scale: list[float]
    coef: list[float]
    cov: list[list[float]]
    n_rows: int
    kind: str = "contact"  # the lever's kind: a "resolution" applies only to complainers

    def to_dict(self) -> dict:
        return asdict(self)


def fit_linear_cate(
    lever: str,
    scores: np.ndarray,
    frame: pd.DataFrame,
    groups: np.ndarray,
    modifiers: Sequence[str],
    kind: str = "contact",
) -> LinearCate:
    """Regress the doubly robust `scores` (n,) on the `modifiers` columns of `frame` (n rows).

    Modifiers absent from the frame or constant in it are left out (the effect cannot vary
    with them here)."""
    cols = [c for c in modifiers if c in frame.columns]
    raw = frame[cols].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    center = np.nanmedian(raw, axis=0) if cols else np.zeros(0)
    scale = np.nanstd(raw, axis=0) if cols else np.zeros(0)
    keep = np.isfinite(center) & np.isfinite(scale) & (scale > 0)
    cols = [c for c, k in zip(cols, keep, strict=True) if k]
    center, scale = center[keep], scale[keep]
    z = _standardise(raw[:, keep], center, scale)
    fit = sm.OLS(scores, sm.add_constant(z, has_constant="add")).fit(
        cov_type="cluster", cov_kwds={"groups": pd.factorize(groups)[0]}
    )
    return LinearCate(
        lever=lever,
        modifiers=cols,
        center=[float(v) for v in center],
        scale=[float(v) for v in scale],
        coef=[float(v) for v in fit.params],
        cov=np.asarray(fit.cov_params(), dtype=float).tolist(),
        n_rows=len(scores),
        kind=kind,
    )


def cate_table(fits: Sequence[LinearCate], alpha: float = 0.05) -> pd.DataFrame:
    """One row per lever and term (intercept = the effect at the median customer; a modifier:
    the change per standard deviation), in percentage points with a (1 - alpha) CI."""
    from scipy.stats import norm

    z = float(norm.ppf(1 - alpha / 2))
    rows = []
    for f in fits:
        se = np.sqrt(np.diag(np.asarray(f.cov)))
        for j, term in enumerate(["(median customer)", *f.modifiers]):
            b, s = 100 * f.coef[j], 100 * float(se[j])
            rows.append(
                {
                    "lever": f.lever,
                    "term": term,
                    "effect_pp": b,
                    "ci_low_pp": b - z * s,
                    "ci_high_pp": b + z * s,
                    "p_value": float(2 * norm.sf(abs(b) / s)) if s > 0 else math.nan,
                }
            )
    return pd.DataFrame(
        rows, columns=["lever", "term", "effect_pp", "ci_low_pp", "ci_high_pp", "p_value"]
    )


def _standardise(raw: np.ndarray, center: np.ndarray, scale: np.ndarray) -> np.ndarray:
    z = (raw - center) / scale
    return np.where(np.isfinite(z), z, 0.0)
