"""Next-best action maths: from the effect study's linear conditional effects (cate.json) to
each loan's best lever, its expected PD reduction and loss avoided, and the ranking under a
contact budget. Pure functions of frames and plain numbers, so both the scoring side
(`pipeline.scoring.next_best_action`) and the effect study's policy replay
(`pipeline.effects.policy`) use the same rule; see the scoring module for the method.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import norm

NO_ACTION = "no action shown to help"
# The effect study's verdict for a lever whose average effect's CI lies below zero.
REDUCES = "reduces default"
# Columns added to the scores (per loan) and, with the rank, to the early-warning list.
ACTION_COLUMNS = [
    "next_best_action",
    "action_pd_reduction_pp",
    "action_ci_low_pp",
    "action_ci_high_pp",
    "action_loss_avoided",
]
RANK_COLUMNS = ["action_rank", "action_in_budget"]
EXPOSURE_COLUMN = "outstanding_balance"
COMPLAINED_COLUMN = "complaints_unresolved_6m"


@dataclass(frozen=True)
class ActionModel:
    """The levers' linear conditional effects (dicts of `effects.heterogeneity.LinearCate`)."""

    levers: list[dict]
    alpha: float
    lgd: float


def recommend(features: pd.DataFrame, model: ActionModel) -> pd.DataFrame:
    """`ACTION_COLUMNS` for each row of `features` (same index): the lever, the expected PD
    reduction in pp with its CI (of the reduction), and the expected loss avoided (currency of
    the exposure; NaN without an exposure column)."""
    n = len(features)
    z_crit = float(norm.ppf(1 - model.alpha / 2))
    best = np.full(n, NO_ACTION, dtype=object)
    gain = np.zeros(n)
    lo = np.full(n, math.nan)
    hi = np.full(n, math.nan)
    for lever in model.levers:
        if lever.get("verdict", REDUCES) != REDUCES:
            continue  # not shown to reduce default on average: never offered
        theta, se = lever_effect(features, lever)
        helps = theta + z_crit * se < 0  # the whole interval below zero
        if lever.get("kind") == "resolution":
            if COMPLAINED_COLUMN in features.columns:
                complained = pd.to_numeric(features[COMPLAINED_COLUMN], errors="coerce")
                helps &= complained.fillna(0).to_numpy() > 0
            else:  # a portfolio without the complaint count: no complaint to resolve
                helps &= False
        better = helps & (-theta > gain)
        best[better] = lever["lever"]
        gain[better] = -theta[better]
        lo[better] = 100 * (-theta[better] - z_crit * se[better])
        hi[better] = 100 * (-theta[better] + z_crit * se[better])
    exposure = (
        pd.to_numeric(features[EXPOSURE_COLUMN], errors="coerce").to_numpy(dtype=float)
        if EXPOSURE_COLUMN in features
        else np.full(n, math.nan)
    )
    return pd.DataFrame(
        {
            "next_best_action": pd.array(best.astype(str), dtype="str"),
            "action_pd_reduction_pp": 100 * gain,
            "action_ci_low_pp": lo,
            "action_ci_high_pp": hi,
            "action_loss_avoided": gain * exposure * model.lgd,
        },
        index=features.index,
    )


def lever_effect(features: pd.DataFrame, lever: dict) -> tuple[np.ndarray, np.ndarray]:
    """theta(x) and its standard error per row, probability units (a modifier missing from
    `features` or from a row sits at its median)."""
    cols = lever["modifiers"]
    raw = (
        np.column_stack(
            [
                pd.to_numeric(features[c], errors="coerce").to_numpy(dtype=float)
                if c in features
                else np.full(len(features), math.nan)
                for c in cols
            ]
        )
        if cols
        else np.zeros((len(features), 0))
    )
    z = (raw - np.asarray(lever["center"])) / np.asarray(lever["scale"])
    design = np.column_stack([np.ones(len(features)), np.where(np.isfinite(z), z, 0.0)])
    theta = design @ np.asarray(lever["coef"])
    var = np.einsum("ij,jk,ik->i", design, np.asarray(lever["cov"]), design)
    return theta, np.sqrt(np.maximum(var, 0.0))


def rank_by_budget(actions: pd.DataFrame, budget: int) -> pd.DataFrame:
    """`actions` with action_rank (1 = most loss avoided per contact; none for no action) and
    action_in_budget (the first `budget` ranked). Loans without an exposure rank after those
    with one, by PD reduction."""
    has = actions["next_best_action"].astype(str) != NO_ACTION
    key = actions.assign(
        _loss=actions["action_loss_avoided"].fillna(-1.0),
        _gain=actions["action_pd_reduction_pp"],
    )
    order = key.loc[has].sort_values(["_loss", "_gain"], ascending=False, kind="stable").index
    rank = pd.Series(pd.NA, index=actions.index, dtype="Int64")
    rank.loc[order] = np.arange(1, len(order) + 1)
    out = actions.copy()
    out["action_rank"] = rank
    out["action_in_budget"] = (rank <= budget).fillna(False).astype(bool)
    return out
