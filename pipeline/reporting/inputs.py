"""What the run report shows, gathered once by the report stage (no I/O while rendering but
the run folder's files), and the captions of the plots it knows."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.core import catalogue

# Captions of the known plots, and the section each one belongs to; any other PNG in the run
# folder goes to "More plots" with a caption made from its file name.
PLOTS: dict[str, tuple[str, str]] = {
    catalogue.SHAP_FAMILY_PNG: (
        "explain",
        "Share of the model's attribution (mean |SHAP|) by family.",
    ),
    catalogue.SHAP_TOP_PNG: (
        "explain",
        "Features the model uses most (mean |SHAP|, log-odds); green: more of it lowers the PD, "
        "red: raises it.",
    ),
    catalogue.SHAP_BEESWARM_PNG: (
        "explain",
        "SHAP value of every sampled loan for the top features (log-odds; right raises the PD), "
        "coloured by the feature's value.",
    ),
    catalogue.ROC_PNG: ("performance", "ROC curve per split (calibrated PD)."),
    catalogue.KS_PNG: (
        "performance",
        "KS on the test split: cumulative shares of defaults and non-defaults by PD; the widest "
        "gap is the KS, at its cut-off.",
    ),
    catalogue.CALIBRATION_PNG: (
        "performance",
        "Reliability: mean predicted PD against the observed default rate per PD bin.",
    ),
    catalogue.SCORE_DISTRIBUTION_PNG: (
        "performance",
        "Score (points) by outcome on the test split.",
    ),
    catalogue.GAINS_PNG: (
        "gains",
        "Cumulative capture of defaults and lift by PD decile, test split.",
    ),
    catalogue.PSI_PNG: ("stability", "Population stability index of each feature, train vs test."),
    catalogue.OVER_TIME_PNG: (
        "validation",
        "AUC, observed default rate and mean PD per snapshot date, coloured by split.",
    ),
}


def plot_place(name: str) -> tuple[str, str]:
    """(section, caption) of a PNG of the run folder: the known plots by name, the dependence
    plots and example-loan waterfalls by their prefix, anything else to "more"."""
    if name in PLOTS:
        return PLOTS[name]
    stem = name.removesuffix(".png")
    if stem.startswith(catalogue.SHAP_DEPENDENCE_PREFIX):
        feature = stem.removeprefix(catalogue.SHAP_DEPENDENCE_PREFIX)
        return "dependence", feature
    if stem.startswith(catalogue.SHAP_WATERFALL_PREFIX):
        label = stem.removeprefix(catalogue.SHAP_WATERFALL_PREFIX)
        return "examples", f"A {label}-risk loan: what moves its PD from the average (log-odds)."
    return "more", stem.replace("_", " ").capitalize() + "."


TUNING_PLOTS = {
    catalogue.TUNING_HISTORY_PNG: "Optuna optimisation history: validation AUC per trial.",
    catalogue.TUNING_IMPORTANCES_PNG: "Optuna parameter importances for validation AUC.",
}


EFFECTS_PLOTS = {
    catalogue.FOREST_PNG: (
        "Effect of each relationship lever on PD (doubly robust, 95% CI) vs naive."
    ),
    catalogue.OVERLAP_PNG: "Propensity overlap by arm for each lever.",
    catalogue.QINI_PNG: (
        "Qini curves per lever on the simulated book's held-out randomised trial: incremental "
        "non-defaults when loans are contacted in order of the lever's estimated PD reduction."
    ),
}


@dataclass
class ReportInputs:
    """Everything the page shows, gathered once (no MLflow calls while rendering)."""

    run_id: str
    run_dir: Path
    latest: dict[str, Any]
    metrics: dict[str, Any]
    run_metrics: dict[str, float] = field(default_factory=dict)
    run_params: dict[str, str] = field(default_factory=dict)
    run_tags: dict[str, str] = field(default_factory=dict)
    trials: list[dict[str, Any]] = field(default_factory=list)
    tuning_pngs: dict[str, bytes] = field(default_factory=dict)
    data_kind: str = "tables"
    data_source: str = ""
    effects_dir: Path | None = None
    model_name: str = "loanrisk"  # the registered model's name: "loanrisk v3"
    gap_months: int | None = None  # the purge gap before validation (out-of-time split)
    labelled_rows: int | None = None  # labelled rows of the feature matrix, gap included
