"""Next-best action: for a scored loan, the relationship lever that lowers its PD most, and
whether contacting it is worth it.

For each lever of the effect study's heterogeneous effects (`cate.json`, written by
`loanrisk effects`), a loan's conditional effect is theta(x) = b0 + b'z(x) on the lever's
effect modifiers, with the interval theta +/- z_(1-alpha/2) sqrt(z' V z) from the coefficients'
customer-clustered covariance. Only levers the study found to reduce default on average (their
verdict in cate.json) are offered, and the action is the one with the largest estimated PD
reduction whose interval for this loan lies entirely below zero, or "no action shown to help".
A resolution lever (complaint handling) is only offered to a loan whose customer has a
complaint still unresolved (last 6 months): there is nothing to resolve for the others.

Expected PD reduction (pp) = -theta; expected loss avoided = reduction x exposure at default
(the outstanding balance) x LGD (`effects.lgd`). On the early-warning list the actions are
ranked by loss avoided per contact (one action = one contact), and the first
`effects.monthly_contact_budget` are marked in budget.

The study's effects are averages over the months it pooled: the action is "shown to help on
loans like this one", not a promise for this loan.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import norm

from pipeline.config import Config
from pipeline.core import catalogue

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

    @classmethod
    def load(cls, path: Path, lgd: float) -> ActionModel | None:
        """The model in `path` (cate.json), None when the study has not written one."""
        if not path.exists():
            return None
        doc = json.loads(path.read_text())
        return cls(list(doc.get("levers", [])), float(doc.get("alpha", 0.05)), lgd)


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


def action_model(cfg: Config) -> ActionModel | None:
    """The configured action model: the study's cate.json under the reports folder, when
    effects.next_best_action is on and the study has written one."""
    if not cfg.effects.next_best_action:
        return None
    path = catalogue.effects_dir(cfg.output.reports_dir) / catalogue.EFFECTS_CATE_JSON
    return ActionModel.load(path, cfg.effects.lgd)


def add_actions(out: pd.DataFrame, X: pd.DataFrame, model: ActionModel | None) -> pd.DataFrame:
    """A scored chunk (`out`, row i = row i of the prepared features `X`) with the action
    columns; unchanged when there is no action model."""
    if model is None:
        return out
    acts = recommend(X.reset_index(drop=True), model)
    return pd.concat([out.reset_index(drop=True), acts], axis=1)


def rank_list(ew: pd.DataFrame, budget: int) -> pd.DataFrame:
    """The early-warning list with `rank_by_budget`'s columns, in its own row order; a list
    without action columns (no study, or nothing flagged) as it is."""
    if ew.empty or "next_best_action" not in ew.columns:
        return ew
    return rank_by_budget(ew, budget)
