"""Explain: SHAP agreement with shap, PD points, directions and turns, the relationship-factor
answer and caveats, the truth table, and the files the HTML report reads."""

from __future__ import annotations

import json

import lightgbm as lgb
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import shap
from scipy.special import expit

from pipeline.config import Config
from pipeline.core.catalogue import RunFiles
from pipeline.core.errors import ConfigError
from pipeline.core.metadata import FeatureSpec
from pipeline.riskmath.attribution import explain
from pipeline.riskmath.dependence import dependence, pd_points
from pipeline.simulator.known_truth import with_truth
from pipeline.stages.explain import (
    CAUSAL_CAVEAT,
    caveats,
    headline,
    relationship_answer,
    write_outputs,
)

SPECS = [
    FeatureSpec(
        "late_instalments_6m",
        "repayment",
        "Late instalments, last 6 months",
        "raises",
        label="{value:.0f} late instalments in the last 6 months",
    ),
    FeatureSpec(
        "tenure_months",
        "relationship",
        "Months since the relationship began",
        "lowers",
        label="customer for {value:.0f} months",
    ),
    FeatureSpec(
        "lender_contacts_per_month_3m",
        "relationship",
        "Lender contacts per month (fatigue)",
        "unknown",
        label="{value:.1f} lender contacts a month over the last 3 months",
    ),
    FeatureSpec(
        "reminders_3m",
        "relationship",
        "Payment reminders in the last 3 months",
        "lowers",
        label="{value:.0f} payment reminders in the last 3 months",
    ),
    FeatureSpec(
        "product", "customer_loan", "Loan product", kind="categorical", label="product: {value}"
    ),
]
NAMES = [s.name for s in SPECS]


def _frame(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    late = rng.poisson(0.7, n).astype(float)
    late[rng.random(n) < 0.05] = np.nan
    return pd.DataFrame(
        {
            "late_instalments_6m": late,
            "tenure_months": rng.uniform(1, 120, n),
            "lender_contacts_per_month_3m": rng.uniform(0, 4, n),
            "reminders_3m": rng.poisson(1.0, n).astype(float),
            "product": pd.Categorical(
                rng.choice(["auto", "card", "personal"], n), categories=["auto", "card", "personal"]
            ),
        }
    )


def _truth_logit(X: pd.DataFrame) -> np.ndarray:
    """Planted: late raises, tenure lowers, contacts a valley at 2, reminders raise (as risky
    customers get reminded), card raises."""
    c = X["lender_contacts_per_month_3m"].to_numpy()
    return (
        -2.5
        + 0.8 * np.nan_to_num(X["late_instalments_6m"].to_numpy())
        - 0.015 * X["tenure_months"].to_numpy()
        + 0.9 * np.abs(c - 2.0)
        + 0.3 * X["reminders_3m"].to_numpy()
        + 0.5 * (X["product"] == "card").to_numpy()
    )


@pytest.fixture(scope="module")
def fitted():
    X = _frame(3000)
    rng = np.random.default_rng(1)
    y = (rng.random(len(X)) < expit(_truth_logit(X))).astype(int)
    params = {
        "objective": "binary",
        "num_threads": 1,
        "verbose": -1,
        "max_depth": 4,
        "num_leaves": 15,
        "learning_rate": 0.1,
        "seed": 0,
    }
    booster = lgb.train(params, lgb.Dataset(X, y), num_boost_round=60)
    return booster, X


def test_pred_contrib_equals_tree_explainer_and_binary_shape(fitted):
    booster, X = fitted
    contribs = booster.predict(X, pred_contrib=True)
    assert contribs.shape == (len(X), X.shape[1] + 1)  # last column the bias
    explainer = shap.TreeExplainer(booster)
    values = explainer.shap_values(X)
    # shap 0.51, binary LightGBM: one (n, features) array in log-odds, not a list per class.
    assert isinstance(values, np.ndarray) and values.shape == (len(X), X.shape[1])
    np.testing.assert_allclose(values, contribs[:, :-1], atol=1e-6, rtol=0)
    assert np.ndim(explainer.expected_value) == 0
    assert float(explainer.expected_value) == pytest.approx(contribs[0, -1], abs=1e-6)
    # The Explanation API returns the same numbers.
    np.testing.assert_allclose(explainer(X).values, contribs[:, :-1], atol=1e-6, rtol=0)
    # Contributions add up to the raw log-odds of the prediction.
    raw = booster.predict(X, raw_score=True)
    np.testing.assert_allclose(contribs.sum(axis=1), raw, atol=1e-6)


def test_pd_points_known_values():
    assert pd_points(np.array([np.log(3.0)]), 0.0)[0] == pytest.approx(25.0)
    assert pd_points(np.array([0.0]), -3.0)[0] == 0.0
    p = expit(-3.0)
    small = pd_points(np.array([1e-3]), -3.0)[0]
    assert small == pytest.approx(100 * 1e-3 * p * (1 - p), rel=1e-4)
    a = np.array([0.1, 0.5, 1.0])
    assert np.all(np.diff(pd_points(a, -3.0)) > 0)


def _synthetic_contribs(X: pd.DataFrame) -> np.ndarray:
    """SHAP values with known shape: late raises, tenure lowers, contacts a valley at 2,
    reminders raise (against the business's expectation), product small noise."""
    late = np.nan_to_num(X["late_instalments_6m"].to_numpy())
    c = X["lender_contacts_per_month_3m"].to_numpy()
    s = np.column_stack(
        [
            0.8 * (late - late.mean()),
            -0.01 * (X["tenure_months"].to_numpy() - 60),
            0.6 * (np.abs(c - 2.0) - 1.0),
            0.2 * (X["reminders_3m"].to_numpy() - 1.0),
            np.where(X["product"] == "card", 0.05, -0.02),
        ]
    )
    return np.column_stack([s, np.full(len(X), -2.0)])


def test_importance_directions_turns_and_pd_points():
    X = _frame(4000, seed=3)
    contribs = _synthetic_contribs(X)
    ex = explain(contribs, X, SPECS)
    imp = ex.importance.set_index("feature")
    assert imp.at["late_instalments_6m", "direction"] == "raises"
    assert imp.at["late_instalments_6m", "agrees"] is True
    assert imp.at["tenure_months", "direction"] == "lowers"
    assert imp.at["tenure_months", "agrees"] is True
    assert imp.at["reminders_3m", "agrees"] is False
    assert imp.at["product", "direction"] == "n/a"
    # The valley at 2 contacts a month: found, located, worded with the metadata label.
    assert bool(imp.at["lender_contacts_per_month_3m", "turns"])
    assert imp.at["lender_contacts_per_month_3m", "turn_at"] == pytest.approx(2.0, abs=0.45)
    note = imp.at["lender_contacts_per_month_3m", "monotonicity"]
    assert note.startswith("turns at ") and "lender contacts a month" in note
    assert note.endswith("up to there more of it lowers PD, beyond it raises PD")
    assert not bool(imp.at["tenure_months", "turns"])
    # PD points from the median log-odds of the rows.
    median = np.median(contribs.sum(axis=1))
    assert ex.median_log_odds == pytest.approx(median)
    expected = pd_points(np.abs(contribs[:, :-1]).mean(axis=0), median)
    got = ex.importance.set_index("feature").loc[NAMES, "pd_points"].to_numpy()
    np.testing.assert_allclose(got, expected)
    assert ex.importance["share"].sum() == pytest.approx(1.0)
    rel = ex.families.set_index("family").loc["relationship"]
    assert rel["n_features"] == 3
    assert rel["mean_abs_shap"] == pytest.approx(
        imp.loc[imp["family"] == "relationship", "mean_abs_shap"].sum()
    )


def test_dependence_peak_and_flat():
    v = np.linspace(0, 10, 500)
    peak = dependence(pd.Series(v), -((v - 6) ** 2))
    assert peak.turns and peak.note.endswith("more of it raises PD, beyond it lowers PD")
    assert abs(peak.turn_at - 6) < 1
    flat = dependence(pd.Series(np.zeros(50)), np.zeros(50))
    assert flat.direction == "none" and not flat.turns


def test_answer_caveats_and_headline():
    X = _frame(4000, seed=4)
    ex = explain(_synthetic_contribs(X), X, SPECS)
    answer = relationship_answer(ex)
    assert answer[0].startswith("1. Months since the relationship began: more of it lowers PD")
    assert "PD points" in answer[0]
    assert any("Payment reminders" in line for line in answer[1:])  # among the ones that raise
    cav = caveats(ex)
    assert len(cav) == 1 and cav[0].startswith("Payment reminders in the last 3 months")
    assert "not causal" in cav[0]
    text = headline(ex)
    assert "Months since the relationship began" in text and "PD points" in text
    assert "against the expected direction" in text
    assert "Lender contacts per month (fatigue): turns at " in text


def test_no_caveat_when_directions_agree():
    X = _frame(2000, seed=5)
    contribs = _synthetic_contribs(X)
    contribs[:, 3] *= -1  # reminders now lower PD, as expected
    assert caveats(explain(contribs, X, SPECS)) == []


def test_truth_table_from_a_synthetic_truth_dict():
    X = _frame(4000, seed=6)
    truth = {
        "effects": {
            "tenure": {"kind": "causal", "size": -0.2, "features": ["tenure_months"],
                       "feature_direction": "lowers", "attribution": 0.1},
            "payment_reminder": {"kind": "causal", "size": -0.3, "features": ["reminders_3m"],
                                 "feature_direction": "lowers", "attribution": 0.1},
            "contact_fatigue": {"kind": "causal", "size": 0.2, "threshold_per_month": 2.0,
                                "features": ["lender_contacts_per_month_3m"],
                                "feature_direction": "raises", "attribution": 0.05},
            "late": {"kind": "marker", "size": None, "features": ["absent", "late_instalments_6m"],
                     "feature_direction": "raises"},
            "not_in_matrix": {"kind": "causal", "size": 0.1, "features": ["nope"],
                              "feature_direction": "raises"},
        }
    }  # fmt: skip
    ex = with_truth(explain(_synthetic_contribs(X), X, SPECS), truth)
    t = ex.truth.set_index("effect")
    assert set(t.index) == {"tenure", "payment_reminder", "contact_fatigue", "late"}
    assert t.at["tenure", "matches"] and t.at["tenure", "found_direction"] == "lowers"
    assert not t.at["payment_reminder", "matches"]  # the model found "raises"
    assert t.at["payment_reminder", "verdict"] == "NOT recovered: the direction differs"
    # Fatigue is checked above its threshold, where contacts raise PD, and the turn is reported.
    assert t.at["contact_fatigue", "matches"] and t.at["contact_fatigue", "turns"]
    # A marker (a sign of distress, not a cause) is listed with its direction, not checked.
    assert t.at["late", "feature"] == "late_instalments_6m"
    assert t.at["late", "found_direction"] == "raises" and not t.at["late", "checked"]
    assert "Planted effects recovered: 2 of the 3 SHAP can show" in headline(ex)


def test_truth_table_skips_what_shap_cannot_show():
    X = _frame(4000, seed=6)
    eff = {"kind": "causal", "size": -0.3, "features": ["reminders_3m"],
           "feature_direction": "lowers"}  # fmt: skip
    truth = {
        "effects": {
            "targeted": {**eff, "attribution": 0.1, "confounding": "opposite",
                         "confounding_note": "the lender calls risky customers"},
            "tiny": {**eff, "attribution": 0.001, "confounding": "none"},
        }
    }  # fmt: skip
    t = with_truth(explain(_synthetic_contribs(X), X, SPECS), truth, 0.02).truth
    t = t.set_index("effect")
    # Both went the wrong way ("raises"), but neither counts: one is confounded against its
    # effect by who gets it, the other too small for any model.
    assert not t["checked"].any() and t["matches"].isna().all()
    assert "the lender calls risky customers" in t.at["targeted", "verdict"]
    assert "too small" in t.at["tiny", "verdict"]
    # A lower minimum size checks the small one, and it fails.
    t2 = with_truth(explain(_synthetic_contribs(X), X, SPECS), truth, 0.0001).truth
    assert t2.set_index("effect").at["tiny", "matches"] == False  # noqa: E712 (a pandas NA-able bool)


def test_truth_table_marks_directions_imposed_by_constraints():
    X = _frame(4000, seed=6)
    tenure = {"features": ["tenure_months"], "feature_direction": "lowers", "attribution": 0.1}
    truth = {"effects": {"tenure": tenure}}
    ex = with_truth(
        explain(_synthetic_contribs(X), X, SPECS, constrained=frozenset({"tenure_months"})), truth
    )
    assert "imposed by a monotone constraint" in ex.truth["verdict"].iloc[0]
    assert ex.importance.set_index("feature").at["tenure_months", "constrained"]


def test_truth_table_null_must_rank_below_every_checked_effect():
    X = _frame(2000, seed=7)
    contribs = _synthetic_contribs(X)
    contribs[:, 3] = 0.0  # reminders: the model uses nothing
    tenure = {"features": ["tenure_months"], "feature_direction": "lowers", "attribution": 0.1}
    truth = {"effects": {"null": {"features": ["reminders_3m"], "feature_direction": "none"},
                         "tenure": tenure}}  # fmt: skip
    t = with_truth(explain(contribs, X, SPECS), truth).truth.set_index("effect")
    assert t.at["null", "matches"] and "ranks below" in t.at["null", "verdict"]
    # A null the model leans on (tenure carries a real signal here) ranks above the effect.
    truth2 = {"effects": {"null": {"features": ["tenure_months"], "feature_direction": "none"},
                          "reminder": {"features": ["reminders_3m"], "feature_direction": "raises",
                                       "attribution": 0.1}}}  # fmt: skip
    contribs2 = _synthetic_contribs(X)
    t2 = with_truth(explain(contribs2, X, SPECS), truth2).truth.set_index("effect")
    assert not t2.at["null", "matches"] and "ranks above" in t2.at["null", "verdict"]


def test_explain_rejects_mismatched_shapes_and_unknown_columns():
    X = _frame(50)
    with pytest.raises(ValueError, match="contribs shape"):
        explain(np.zeros((50, 3)), X, SPECS)
    with pytest.raises(ValueError, match="no FeatureSpec"):
        explain(np.zeros((50, 6)), X, SPECS[:-1])


def test_write_outputs_files_for_the_report(fitted, tmp_path):
    booster, X = fitted
    X = X.iloc[:800]
    cfg = Config.model_validate({"explain": {"plot_rows": 300, "top_features_plot": 4}})
    ex = explain(booster.predict(X, pred_contrib=True), X, SPECS)
    ids = np.arange(1000, 1000 + len(X))
    paths = write_outputs(ex, RunFiles(tmp_path), cfg, ids=ids)
    assert plt.get_fignums() == []  # every figure closed
    assert all(p.exists() and p.stat().st_size > 0 for p in paths)
    summary = json.loads(RunFiles(tmp_path).explain_summary.read_text())
    for name in ("shap_importance", "shap_by_family", "relationship_factors"):
        assert summary["files"]["tables"][name] == f"{name}.csv"
        assert (tmp_path / f"{name}.csv").exists()
    plots = summary["files"]["plots"]
    for kind in ("family", "top_features", "beeswarm"):
        assert (tmp_path / plots[kind]).exists()
    rel = [s.name for s in SPECS if s.family == "relationship"]
    assert sorted(plots["dependence"]) == sorted(rel)
    assert all((tmp_path / f).exists() for f in plots["dependence"].values())
    for feature, partner in summary["interactions"].items():
        assert partner in NAMES and partner != feature
    assert sorted(plots["waterfall"]) == ["high", "low", "median"]
    examples = {e["label"]: e for e in summary["example_loans"]}
    assert examples["low"]["pd_raw"] < examples["median"]["pd_raw"] < examples["high"]["pd_raw"]
    assert all(1000 <= e["loan_id"] < 1000 + len(X) for e in examples.values())
    assert any("late instalments in the last 6 months" in t for t in examples["high"]["raises_pd"])
    assert summary["plot_rows"] == 300 and summary["n_rows"] == len(X)
    assert summary["headline"] == headline(ex)
    assert summary["causal_caveat"] == CAUSAL_CAVEAT
    ranked = summary["relationship_factors"]
    assert [r["relationship_rank"] for r in ranked] == [1, 2, 3]
    assert ranked[0]["mean_abs_shap"] >= ranked[-1]["mean_abs_shap"]
    assert {"pd_points", "share", "direction", "monotonicity", "agrees"} <= set(ranked[0])
    assert summary["pd_translation"]["median_pd"] == pytest.approx(ex.median_pd)
    csv = pd.read_csv(tmp_path / "relationship_factors.csv")
    assert list(csv["feature"]) == [r["feature"] for r in ranked]


def test_explain_stopped_while_drawing_leaves_no_tables_without_their_plots(
    fitted, tmp_path, monkeypatch
):
    """Tables written, then the process stopped before the plots: the report would show SHAP
    tables and silently no dependence plots. The set is published whole or not at all."""
    from pipeline.plotting import shap_plots

    booster, X = fitted
    X = X.iloc[:300]
    ex = explain(booster.predict(X, pred_contrib=True), X, SPECS)

    def stopped(*args, **kwargs):
        raise KeyboardInterrupt("stopped while drawing")

    monkeypatch.setattr(shap_plots, "make_all", stopped)
    with pytest.raises(KeyboardInterrupt):
        write_outputs(ex, RunFiles(tmp_path), Config())
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_flagged_tiers_must_be_scoring_tiers():
    with pytest.raises(ConfigError, match="flagged_tiers"):
        from pipeline.config import load_config

        load_config(overrides=["explain.flagged_tiers=[Z]"])
    cfg = Config.model_validate({"explain": {"reasons_for": "flagged", "flagged_tiers": ["E"]}})
    assert cfg.explain.flagged_tiers == ("E",)


def test_unused_relationship_factor_gets_no_dependence_plot(tmp_path):
    X = _frame(400, seed=8)
    contribs = _synthetic_contribs(X)
    contribs[:, 3] = 0.0  # reminders_3m: never used by the model
    cfg = Config.model_validate({"explain": {"plot_rows": 200, "top_features_plot": 3}})
    write_outputs(explain(contribs, X, SPECS), RunFiles(tmp_path), cfg)
    summary = json.loads(RunFiles(tmp_path).explain_summary.read_text())
    assert summary["unused_relationship_factors"] == ["reminders_3m"]
    assert "reminders_3m" not in summary["files"]["plots"]["dependence"]
    assert not (tmp_path / "shap_dependence_reminders_3m.png").exists()
    assert (tmp_path / "shap_dependence_tenure_months.png").exists()


def test_example_loan_labels_are_readable_and_hide_personal_values():
    from pipeline.plotting.shap_plots import loan_labels

    income = FeatureSpec(
        "annual_income",
        "customer_loan",
        "Annual income",
        "lowers",
        label="annual income {value:,.0f}",
    )
    X = _frame(50, seed=9)
    X["annual_income"] = 45_000.0
    X.loc[0, "late_instalments_6m"] = 3.0
    base = _synthetic_contribs(X)
    contribs = np.column_stack([base[:, :-1], np.full(50, 0.1), base[:, -1]])
    ex = explain(contribs, X, [*SPECS, income])
    labels = loan_labels(ex, 0, {s.name: s for s in ex.specs})
    assert labels[0] == "3 late instalments in the last 6 months"
    assert labels[-1] == "Annual income"
    assert not any("45,000" in t for t in labels)


def test_stability_refits_agree_on_strong_factors_and_resample_by_customer(fitted):
    from pipeline.modelling.shap_stability import _bootstrap_weights, refit_contributions
    from pipeline.stages.explain import add_stability

    booster, X = fitted
    rng = np.random.default_rng(1)
    y = (rng.random(len(X)) < expit(_truth_logit(X))).astype(int)
    customers = np.arange(len(X)) // 3  # three snapshots per customer
    w = _bootstrap_weights(np.random.default_rng(0), len(X), customers)
    assert (pd.Series(w).groupby(customers).nunique() == 1).all()  # a customer moves whole
    assert w.reshape(-1, 3)[:, 0].sum() == len(X) // 3  # as many draws as customers
    rows = np.arange(0, len(X), 3)
    refits = refit_contributions(booster, X, y, customers, X.iloc[rows], refits=3, seed=7)
    assert len(refits) == 3 and all(r.shape == (len(rows), X.shape[1]) for r in refits)
    # Refits differ from each other (the resample is real) but not from the truth's shape.
    assert not np.allclose(refits[0], refits[1])
    ex = explain(booster.predict(X, pred_contrib=True), X, SPECS)
    add_stability(ex, rows, refits)
    share = ex.importance.set_index("feature")["stable_share"]
    assert share["late_instalments_6m"] == 1.0 and share["tenure_months"] == 1.0
    assert share.between(0, 1).all()
    # Same seed, same refits: reproducible.
    again = refit_contributions(booster, X, y, customers, X.iloc[rows], refits=1, seed=7)
    np.testing.assert_array_equal(again[0], refits[0])


def test_headline_is_a_few_short_lines_one_per_factor():
    X = _frame(4000, seed=4)
    lines = headline(explain(_synthetic_contribs(X), X, SPECS)).splitlines()
    assert lines[0].startswith("Relationship factors that lower the predicted PD")
    assert lines[1].startswith("  1. ") and "PD points" in lines[1]
    assert max(len(line) for line in lines) < 200  # was one line of about 1,000 characters


def test_refits_on_a_sample_shrink_the_leaves_by_its_share(fitted, monkeypatch):
    from pipeline.modelling import shap_stability

    _, X = fitted
    y = (np.arange(len(X)) % 7 == 0).astype(int)
    params = {"objective": "binary", "num_threads": 1, "verbose": -1, "min_data_in_leaf": 30}
    booster = lgb.train(params, lgb.Dataset(X, y), num_boost_round=5)
    seen = []
    real_train = shap_stability.lgb.train

    def spy(params, *args, **kwargs):
        seen.append(params["min_data_in_leaf"])
        return real_train(params, *args, **kwargs)

    monkeypatch.setattr(shap_stability.lgb, "train", spy)
    shap_stability.refit_contributions(
        booster, X[:1000], y[:1000], None, X[:10], refits=1, seed=0, leaf_ratio=1 / 3
    )
    assert seen == [10]  # 30 rows a leaf for every row, 10 for a third of them
