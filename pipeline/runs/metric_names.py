"""MLflow metric names grouped for the UI's charts tab, and back to the flat names of the code.

MLflow's "Model metrics" tab groups charts by the part of a name before its first "/": with flat
names (`test_auc`, `test_calibration_o_e`, ...) a run showed 94 single-bar charts in one group.
The stages keep computing flat names (those of `metrics.json` and the report's reading); they are
renamed here when logged (`grouped`) and renamed back when read from a run (`flat`). The rules
are prefix pairs tried longest first, so both directions are exact inverses.
"""

from __future__ import annotations

from collections.abc import Mapping

# (flat prefix, grouped prefix); a whole name is a prefix with nothing after it
RULES: tuple[tuple[str, str], ...] = (
    ("test_calibration_", "calibration/test_"),
    ("calibration_brier_", "calibration/brier_"),
    ("test_unseen_customers_", "unseen_customers/"),
    ("test_auc_protected_", "fairness/auc_protected_"),
    ("test_", "test/"),
    ("valid_", "valid/"),
    ("train_", "train/"),
    ("best_valid_auc", "tuning/best_valid_auc"),
    ("best_iteration", "tuning/best_iteration"),
    ("tuning_seconds", "tuning/seconds"),
    ("n_trials", "tuning/n_trials"),
    ("tuning_rows", "tuning/rows"),
    ("final_rounds", "tuning/final_rounds"),
    ("constraints_pair_rows", "tuning/constraints_pair_rows"),
    ("oracle_auc", "benchmark/oracle_auc"),
    ("baseline_auc", "benchmark/baseline_auc"),
    ("scorecard_auc", "benchmark/scorecard_auc"),
    ("gate_baseline_auc", "benchmark/gate_baseline_auc"),
    ("truth_", "explain/truth_"),
    ("explain_", "explain/"),
    ("score_psi_", "stability/score_psi_"),
    ("csi_", "stability/csi_"),
    ("promoted", "promotion/promoted"),
)
_TO_GROUPED = sorted(RULES, key=lambda r: -len(r[0]))
_TO_FLAT = sorted(RULES, key=lambda r: -len(r[1]))


def grouped(name: str) -> str:
    """The name a flat metric is logged under (`test_auc` -> `test/auc`); unknown names as is."""
    if "/" in name:
        return name
    for flat_prefix, group_prefix in _TO_GROUPED:
        if name.startswith(flat_prefix):
            return group_prefix + name[len(flat_prefix) :]
    return name


def flat(name: str) -> str:
    """The flat name of a logged metric (`test/auc` -> `test_auc`); the inverse of `grouped`."""
    for flat_prefix, group_prefix in _TO_FLAT:
        if name.startswith(group_prefix):
            return flat_prefix + name[len(group_prefix) :]
    return name


def grouped_metrics(metrics: Mapping[str, float]) -> dict[str, float]:
    return {grouped(k): v for k, v in metrics.items()}


def flat_metrics(metrics: Mapping[str, float]) -> dict[str, float]:
    """A run's metrics (`run.data.metrics`) under the flat names the code and metrics.json use;
    the learning curves (`curve/...`) keep their names."""
    return {flat(k): v for k, v in metrics.items()}
