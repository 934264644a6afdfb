"""Refits for SHAP stability: the chosen model's configuration refitted on bootstrap resamples.

One tuned model can drop a real factor or lean on noise: on 10k-customer simulated books the
tuner once picked a model that ignored financial education (a planted effect) and ranked the
marketing null 17th. Refitting the same parameters, for the same number of rounds, on the
training customers drawn with replacement, and reading each refit's SHAP values on the same
rows, shows which of the report's directions the data supports and which are one model's
choice. `pipeline.riskmath.attribution.add_stability` turns the refits' contributions into a
`stable_share` per feature.
"""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd

from pipeline.modelling.tuning_sample import scale_min_leaf

# The parameters that define the fitted model; the loaded booster also carries every LightGBM
# default, including per-purpose seeds that would override a new `seed`.
_MODEL_PARAMS = (
    "objective",
    "learning_rate",
    "num_leaves",
    "max_depth",
    "min_data_in_leaf",
    "min_sum_hessian_in_leaf",
    "lambda_l1",
    "lambda_l2",
    "bagging_fraction",
    "bagging_freq",
    "feature_fraction",
    "monotone_constraints",
    "monotone_constraints_method",
    "max_bin",
)


def refit_contributions(
    booster: lgb.Booster,
    X_train: pd.DataFrame,
    y_train: np.ndarray,
    groups: np.ndarray | None,
    X_eval: pd.DataFrame,
    refits: int,
    seed: int,
    n_jobs: int = 1,
    leaf_ratio: float = 1.0,
) -> list[np.ndarray]:
    """SHAP values (n_eval x features, bias column dropped) of `refits` refits of `booster`'s
    configuration, each on a bootstrap of the training rows by `groups` (customers: their
    snapshots move together, or the resample would keep a defaulter's other snapshots) or by
    row when `groups` is None. A drawn customer's rows enter with the number of draws as
    weight. `leaf_ratio`: the training rows here over those `booster` was fitted on (a sample of
    them keeps the trees' shape with leaves as much smaller)."""
    params = scale_min_leaf(refit_params(booster, n_jobs), leaf_ratio)
    rounds = booster.current_iteration()
    rng = np.random.default_rng(seed)
    out = []
    for r in range(refits):
        weight = _bootstrap_weights(rng, len(y_train), groups)
        keep = weight > 0
        data = lgb.Dataset(X_train[keep], label=y_train[keep], weight=weight[keep])
        model = lgb.train({**params, "seed": seed + r + 1}, data, num_boost_round=rounds)
        out.append(np.asarray(model.predict(X_eval, pred_contrib=True))[:, :-1])
    return out


def refit_params(booster: lgb.Booster, n_jobs: int = 1) -> dict:
    """The fitted model's configuration, to train the same model again on other data."""
    params = {k: booster.params[k] for k in _MODEL_PARAMS if k in booster.params}
    params.update(verbosity=-1, deterministic=True, force_col_wise=True, num_threads=n_jobs)
    return params


def _bootstrap_weights(rng: np.random.Generator, n: int, groups: np.ndarray | None) -> np.ndarray:
    if groups is None:
        return np.bincount(rng.integers(0, n, n), minlength=n).astype(float)
    codes, units = pd.factorize(pd.Series(groups))
    draws = np.bincount(rng.integers(0, len(units), len(units)), minlength=len(units))
    return draws[codes].astype(float)
