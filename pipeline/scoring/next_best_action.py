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
from pathlib import Path

import pandas as pd

from pipeline.config import Config
from pipeline.core import catalogue

# The maths lives in riskmath (the effect study's policy replay uses it too); these names stay
# importable from here, where scoring and its tests look for them.
from pipeline.riskmath.actions import (
    ACTION_COLUMNS,
    COMPLAINED_COLUMN,
    EXPOSURE_COLUMN,
    NO_ACTION,
    RANK_COLUMNS,
    REDUCES,
    ActionModel,
    lever_effect,
    rank_by_budget,
    recommend,
)

__all__ = [
    "ACTION_COLUMNS",
    "COMPLAINED_COLUMN",
    "EXPOSURE_COLUMN",
    "NO_ACTION",
    "RANK_COLUMNS",
    "REDUCES",
    "ActionModel",
    "action_model",
    "add_actions",
    "load_action_model",
    "lever_effect",
    "rank_by_budget",
    "rank_list",
    "recommend",
]


def action_model(cfg: Config) -> ActionModel | None:
    """The configured action model: the study's cate.json under the reports folder, when
    effects.next_best_action is on and the study has written one."""
    if not cfg.effects.next_best_action:
        return None
    path = catalogue.effects_dir(cfg.output.reports_dir) / catalogue.EFFECTS_CATE_JSON
    return load_action_model(path, cfg.effects.lgd)


def load_action_model(path: Path, lgd: float) -> ActionModel | None:
    """The model in `path` (cate.json), None when the study has not written one."""
    if not path.exists():
        return None
    doc = json.loads(path.read_text())
    return ActionModel(list(doc.get("levers", [])), float(doc.get("alpha", 0.05)), lgd)


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
