"""Next-best action on a small book with planted heterogeneity: the study's estimator and the
action model recommend the truly best lever for most flagged loans, and never the null lever."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.config import EffectsConfig
from pipeline.effects.heterogeneity import fit_linear_cate
from pipeline.effects.inference import fit_dr
from pipeline.scoring.next_best_action import (
    NO_ACTION,
    ActionModel,
    rank_by_budget,
    rank_list,
    recommend,
)

N = 16000


def _book(seed: int = 0):
    """Three levers, each given to risky-looking customers (confounded by x2). Reminders
    help forgetful customers (m0 > 0: pay on time once reminded), check-ins the others;
    marketing does nothing. m1 is a modifier that matters for none."""
    rng = np.random.default_rng(seed)
    m0, m1, x2 = rng.standard_normal((3, N))
    base = -2.2 + 0.9 * x2 + 0.2 * m1
    effects = {
        "payment_reminder": np.where(m0 > 0, -1.2, 0.0),
        "proactive_checkin": np.where(m0 > 0, 0.0, -0.9),
        "marketing": np.zeros(N),
    }
    treat = {k: (rng.random(N) < 1 / (1 + np.exp(-(0.7 * x2 - 0.4)))).astype(int) for k in effects}
    eta = base + sum(effects[k] * treat[k] for k in effects)
    y = (rng.random(N) < 1 / (1 + np.exp(-eta))).astype(float)
    p0 = 1 / (1 + np.exp(-base))
    # each lever's true effect on a loan's PD, the others off
    true = {k: 1 / (1 + np.exp(-(base + e))) - p0 for k, e in effects.items()}
    frame = pd.DataFrame({"m0": m0, "m1": m1, "x2": x2, "outstanding_balance": 1000.0})
    return frame, y, treat, true, p0


@pytest.fixture(scope="module")
def planted():
    frame, y, treat, true, p0 = _book()
    groups = np.arange(N) // 2
    w = frame[["m0", "m1", "x2"]].to_numpy()
    ecfg = EffectsConfig(n_estimators=60, min_child_samples=50)
    levers = []
    for name, t in treat.items():
        fit = fit_dr(y, t, w, groups, ecfg)
        levers.append(fit_linear_cate(name, fit.scores, frame, groups, ["m0", "m1"]).to_dict())
    return frame, true, p0, ActionModel(levers, alpha=0.05, lgd=0.45)


def test_recommends_the_truly_best_lever_and_never_the_null(planted):
    frame, true, p0, model = planted
    flagged = p0 >= np.quantile(p0, 0.8)  # the early-warning list: the riskiest fifth
    acts = recommend(frame.loc[flagged], model)
    best_true = pd.DataFrame(true).loc[flagged].idxmin(axis=1)
    shown = acts["next_best_action"] != NO_ACTION
    assert shown.mean() > 0.7
    agree = (acts.loc[shown, "next_best_action"] == best_true[shown]).mean()
    assert agree > 0.8, agree
    assert not (acts["next_best_action"] == "marketing").any()
    # the reduction is the estimate's; loss avoided = reduction x exposure x LGD
    r = acts.loc[shown].iloc[0]
    assert r["action_pd_reduction_pp"] > 0 and r["action_ci_low_pp"] > 0
    assert r["action_loss_avoided"] == pytest.approx(r["action_pd_reduction_pp"] / 100 * 450)


def test_budget_takes_the_most_loss_avoided_first(tmp_path):
    acts = pd.DataFrame(
        {
            "loan_id": [1, 2, 3, 4],
            "next_best_action": ["a", NO_ACTION, "b", "a"],
            "action_pd_reduction_pp": [1.0, 0.0, 2.0, 3.0],
            "action_ci_low_pp": [0.1, np.nan, 0.2, 0.3],
            "action_ci_high_pp": [2.0, np.nan, 3.0, 4.0],
            "action_loss_avoided": [50.0, 0.0, 200.0, np.nan],
        }
    )
    ranked = rank_by_budget(acts, budget=2)
    assert ranked["action_rank"].tolist() == [2, pd.NA, 1, 3]
    assert ranked["action_in_budget"].tolist() == [True, False, True, False]
    # the early-warning list ranked in its own (PD) order
    listed = rank_list(acts, budget=1)
    assert listed["action_in_budget"].tolist() == [False, False, True, False]
    assert listed["loan_id"].tolist() == [1, 2, 3, 4]


def test_complaint_resolution_only_for_an_open_complaint():
    lever = {
        "lever": "complaint_resolution",
        "kind": "resolution",
        "modifiers": [],
        "center": [],
        "scale": [],
        "coef": [-0.03],
        "cov": [[1e-6]],
    }
    feats = pd.DataFrame({"complaints_unresolved_6m": [0, 2, np.nan], "outstanding_balance": 1.0})
    acts = recommend(feats, ActionModel([lever], alpha=0.05, lgd=0.45))
    assert acts["next_best_action"].tolist() == [NO_ACTION, "complaint_resolution", NO_ACTION]


def test_an_empty_list_or_one_without_actions_is_left_alone():
    empty = pd.DataFrame()  # nothing flagged
    assert rank_list(empty, budget=5) is empty
    no_study = pd.DataFrame({"loan_id": [1], "pd": [0.3]})
    assert rank_list(no_study, budget=5) is no_study


def test_a_lever_not_shown_to_reduce_default_on_average_is_never_offered():
    helps = {
        "lever": "marketing",
        "modifiers": [],
        "center": [],
        "scale": [],
        "coef": [-0.03],
        "cov": [[1e-6]],
    }
    feats = pd.DataFrame({"outstanding_balance": [1.0, 2.0]})
    for verdict, shown in (("cannot tell", False), ("reduces default", True)):
        acts = recommend(feats, ActionModel([{**helps, "verdict": verdict}], 0.05, 0.45))
        assert (acts["next_best_action"] == "marketing").all() == shown
