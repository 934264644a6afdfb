"""The effect study's estimator and its inference: the doubly robust fit (EconML), the cluster-
robust mean and interval of its scores, the verdict a CI reads as, and the baseline PD that forms
the risk tiers.

Estimator. EconML's LinearDRLearner (doubly robust AIPW, discrete treatment, binary outcome)
with small regularised LightGBM models for the propensity P(T=1 | W) and the outcome
P(Y=1 | W, T), cross-fitted over `n_folds` folds grouped by customer (a customer's loans and
snapshots never straddle a fit and its prediction). The average effect is the mean of the
library's cross-fitted doubly robust scores over the rows whose out-of-fold propensity lies in
`propensity_bounds` (rows outside are trimmed and counted; the effect is then that of the
overlap population). Its 95% CI uses a standard error clustered by customer: one customer
appears at many snapshots and with several loans, and rows treated as independent would give
too narrow an interval (econml's own `ate_interval` assumes independent rows; its point
estimate equals ours when nothing is trimmed).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from econml.dr import LinearDRLearner
from scipy.stats import norm
from sklearn.model_selection import StratifiedGroupKFold

from pipeline.config import EffectsConfig
from pipeline.effects.design import controls
from pipeline.effects.schema import (
    VERDICT_RAISES,
    VERDICT_REDUCES,
    VERDICT_SKIPPED,
    VERDICT_UNCLEAR,
)


@dataclass
class DRFit:
    """A cross-fitted doubly robust fit: per-row scores and out-of-fold propensities."""

    scores: np.ndarray  # (n,) doubly robust score of the effect, probability units
    propensity: np.ndarray  # (n,) out-of-fold P(T=1 | W), unclipped
    library_ate: float  # econml's own ate() (all rows, no trimming)


@dataclass(frozen=True)
class ClusterMean:
    mean: float
    se: float
    low: float
    high: float
    p_value: float


def fit_dr(
    y: np.ndarray, t: np.ndarray, w: np.ndarray, groups: np.ndarray, ecfg: EffectsConfig
) -> DRFit:
    """Cross-fit EconML's LinearDRLearner; return its doubly robust scores and propensities.

    y: (n,) 0/1 outcome; t: (n,) 0/1 treatment; w: (n, k) controls (NaN allowed); groups: (n,)
    cluster ids kept together in the cross-fitting folds.
    """
    est = LinearDRLearner(
        model_propensity=_nuisance(ecfg),
        model_regression=_nuisance(ecfg),
        discrete_outcome=True,
        cv=ecfg.n_folds,
        random_state=ecfg.seed,
        allow_missing=True,  # LightGBM handles NaN controls (a loan with no late payment yet)
    )
    with warnings.catch_warnings():
        # Missing controls are deliberate and LightGBM treats them natively.
        warnings.filterwarnings("ignore", message="Input contains NaN")
        warnings.filterwarnings("ignore", message=".*column-vector y was passed.*")
        warnings.filterwarnings("ignore", category=UserWarning, module="econml")
        # econml stratifies its folds by treatment and outcome: rare defaults in small books.
        warnings.filterwarnings("ignore", message="The least populated class in y")
        est.fit(y, t, X=None, W=w, groups=groups, cache_values=True)
    scores, propensity = _dr_scores(est, len(y))
    return DRFit(scores, propensity, float(np.ravel(est.ate())[0]))


def cluster_mean(values: np.ndarray, groups: np.ndarray, alpha: float = 0.05) -> ClusterMean:
    """Mean of `values` with a cluster-robust standard error (clusters = `groups`).

    se^2 = G / (G - 1) * sum_g (sum_{i in g} (v_i - mean))^2 / n^2, the CR1 small-sample factor
    with G clusters; the interval is mean +/- z_{1 - alpha/2} se.
    """
    v = np.asarray(values, dtype=float)
    n = len(v)
    if n < 2:
        return ClusterMean(math.nan, math.nan, math.nan, math.nan, math.nan)
    mean = float(v.mean())
    sums = pd.Series(v - mean).groupby(np.asarray(groups)).sum().to_numpy()
    g = len(sums)
    se = math.sqrt(g / max(g - 1, 1) * float((sums**2).sum())) / n
    z = float(norm.ppf(1 - alpha / 2))
    p = float(2 * norm.sf(abs(mean) / se)) if se > 0 else math.nan
    return ClusterMean(mean, se, mean - z * se, mean + z * se, p)


def verdict(low: float, high: float) -> str:
    """The plain-words reading of a CI of an effect on default."""
    if math.isnan(low) or math.isnan(high):
        return VERDICT_SKIPPED
    if high < 0:
        return VERDICT_REDUCES
    if low > 0:
        return VERDICT_RAISES
    return VERDICT_UNCLEAR


def baseline_pd(
    frame: pd.DataFrame, feature_cols: Sequence[str], ecfg: EffectsConfig
) -> np.ndarray:
    """Out-of-fold PD from the pre-window controls alone (no treatment), folds by customer.

    Only used to form risk tiers, so a plain LightGBM with the nuisance settings will do.
    """
    w = controls(frame, feature_cols)
    y = frame["label"].to_numpy(dtype=int)
    out = np.full(len(frame), float(y.mean()) if len(y) else math.nan)
    if min(int(y.sum()), int((1 - y).sum())) < ecfg.n_folds:
        return out  # too few defaults to cross-fit: one tier for all
    folds = StratifiedGroupKFold(n_splits=ecfg.n_folds)
    for fit_idx, pred_idx in folds.split(w, y, groups=frame["customer_id"].to_numpy()):
        if len(np.unique(y[fit_idx])) < 2:
            continue
        model = _nuisance(ecfg).fit(w[fit_idx], y[fit_idx])
        out[pred_idx] = model.predict_proba(w[pred_idx])[:, 1]
    return out


def _dr_scores(est: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The cross-fitted doubly robust scores and raw propensities cached by econml's fit.

    econml keeps them as `_cached_values.nuisances` = (Y_pred, clipped propensity, raw
    propensity), Y_pred[..., k] the AIPW pseudo-outcome of arm k (the same attribute backs the
    public `residuals_` of its DML estimators). Its final stage regresses Y_pred[..., 1] -
    Y_pred[..., 0] on a constant, so the mean of the scores is its ATE (checked in the tests).
    """
    cached = getattr(est, "_cached_values", None)
    if cached is None or len(cached.nuisances) != 3:
        raise RuntimeError(
            "econml's fitted LinearDRLearner no longer caches (Y_pred, propensity, raw "
            "propensity): check pipeline.effects.inference._dr_scores against the installed econml"
        )
    y_pred, _, raw = cached.nuisances
    y_pred = np.asarray(y_pred).reshape(n, -1)
    raw = np.asarray(raw).reshape(n, -1)
    return y_pred[:, 1] - y_pred[:, 0], raw[:, 1]


def _nuisance(ecfg: EffectsConfig) -> Any:
    # No bagging: a refit on the same rows gives the same models, so the random-common-cause
    # check measures the noise column, not the sampling of the trees.
    return lgb.LGBMClassifier(
        n_estimators=ecfg.n_estimators,
        learning_rate=ecfg.learning_rate,
        num_leaves=ecfg.num_leaves,
        min_child_samples=ecfg.min_child_samples,
        reg_lambda=ecfg.reg_lambda,
        # Bin edges from 20k rows, not 200k: building the histograms was a third of a fit on
        # the default book, and 20k rows place 255 bins as well.
        subsample_for_bin=20_000,
        n_jobs=ecfg.n_jobs,
        random_state=ecfg.seed,
        verbose=-1,
    )
