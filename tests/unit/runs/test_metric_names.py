"""Metric names: grouped for the MLflow charts tab when logged, flat again when read."""

from __future__ import annotations

import pytest

from pipeline.runs.metric_names import RULES, flat, grouped

# every flat name the stages log on a training run of the default book (evaluate, explain,
# train, the promotion)
LOGGED = [
    "test_auc", "test_auc_lower", "test_auc_upper", "test_ks", "test_brier", "test_raw_auc",
    "test_calibration_o_e", "test_calibration_hl_pvalue", "calibration_brier_raw",
    "calibration_brier_cv_isotonic", "test_unseen_customers_auc", "test_auc_protected_with",
    "test_auc_unconstrained", "valid_auc", "valid_rows", "train_default_rate", "best_valid_auc",
    "best_iteration", "tuning_seconds", "n_trials", "tuning_rows", "final_rounds", "oracle_auc",
    "baseline_auc", "scorecard_auc",
    "gate_baseline_auc", "explain_rows", "explain_median_pd_raw", "truth_directions_matched",
    "score_psi_train_test", "csi_max_abs_points", "promoted",
]  # fmt: skip


@pytest.mark.parametrize("name", LOGGED)
def test_every_logged_name_is_grouped_and_comes_back(name):
    g = grouped(name)
    assert "/" in g and flat(g) == name


def test_groups_read_as_the_report_names_them():
    assert grouped("test_auc") == "test/auc"
    assert grouped("test_calibration_o_e") == "calibration/test_o_e"
    assert grouped("calibration_brier_raw") == "calibration/brier_raw"
    assert grouped("truth_effects_checked") == "explain/truth_effects_checked"
    assert grouped("curve/valid_binary_logloss") == "curve/valid_binary_logloss"
    assert flat("curve/valid_binary_logloss") == "curve/valid_binary_logloss"
    assert len({g for _, g in RULES}) == len(RULES)  # no two rules share a grouped prefix
