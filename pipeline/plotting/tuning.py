"""Optuna's study plots (optimisation history, parameter importances) as closed figures."""

from __future__ import annotations

import logging
import warnings

import optuna
from matplotlib.figure import Figure
from optuna.visualization import matplotlib as ovm

from pipeline.core import catalogue
from pipeline.plotting.figures import pyplot_scope

log = logging.getLogger(__name__)


def study_figures(study: optuna.Study) -> dict[str, Figure]:
    """{file name: figure} of the optimisation history and, with two completed trials or more,
    the parameter importances. Optuna draws on pyplot: each is drawn in its own scope and
    closed, so neither can be drawn over a later plot."""
    figs: dict[str, Figure] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
        with pyplot_scope():
            figs[catalogue.TUNING_HISTORY_PNG] = ovm.plot_optimization_history(study).figure
        completed = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
        if len(completed) >= 2:
            try:
                with pyplot_scope():
                    ax = ovm.plot_param_importances(study)
                figs[catalogue.TUNING_IMPORTANCES_PNG] = ax.figure
            except (RuntimeError, ValueError) as exc:  # too few distinct trials
                log.debug("no parameter importances: %s", exc)
        # Optuna leaves matplotlib's default margins, which cut long parameter names
        # ("learning_rate" drawn as "rning_rate"); MLflow saves the figure as it is.
        for fig in figs.values():
            fig.tight_layout()
    return figs
