"""No global figure state: Optuna's and shap's pyplot drawing is fenced, nothing leaks into the
next plot (the beeswarm once showed Optuna's importance bars over it, cut at 0)."""

from __future__ import annotations

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import optuna
import pandas as pd

from pipeline.core.metadata import FeatureSpec
from pipeline.plotting.figures import global_numpy_seed, new_figure, pyplot_scope
from pipeline.plotting.shap_plots import beeswarm_plot, waterfall_plot
from pipeline.plotting.tuning import study_figures
from pipeline.riskmath.attribution import explain


def _study() -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0))
    study.optimize(lambda t: -((t.suggest_float("x", -1, 1) - 0.2) ** 2), n_trials=6)
    return study


def _shap(n: int = 300, k: int = 4, seed: int = 0) -> tuple[np.ndarray, pd.DataFrame]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, k)), columns=[f"f{j}" for j in range(k)])
    return X.to_numpy() * np.array([0.5, -0.3, 0.2, 0.1]), X


def test_optuna_figures_leave_no_open_figure_and_no_style_behind():
    before = dict(matplotlib.rcParams)
    open_before = set(plt.get_fignums())
    figs = study_figures(_study())
    assert len(figs) == 2
    assert set(plt.get_fignums()) == open_before
    # Optuna switches pyplot to the ggplot style; the fence restores every setting.
    assert matplotlib.rcParams["axes.facecolor"] == before["axes.facecolor"]
    changed = [k for k, v in matplotlib.rcParams.items() if before.get(k) != v]
    assert changed == []


def test_beeswarm_after_tuning_plots_is_its_own_figure_with_negative_values():
    study_figures(_study())
    values, X = _shap()
    fig = beeswarm_plot(values, -2.0, X, top=4)
    ax = fig.axes[0]
    assert ax.get_xlim()[0] < 0 < ax.get_xlim()[1]  # negative SHAP values are on the axis
    assert len(fig.axes) == 2  # the swarm and its colour bar, nothing drawn over it
    assert "SHAP values" in ax.get_title()
    assert plt.get_fignums() == []


def test_shap_plots_are_reproducible_whatever_was_drawn_before():
    values, X = _shap()
    first = beeswarm_plot(values, -2.0, X, top=4)
    np.random.default_rng(5)
    np.random.random(17)  # another user of numpy's global generator in the same process
    second = beeswarm_plot(values, -2.0, X, top=4)
    a, b = first.axes[0].collections, second.axes[0].collections
    assert len(a) == len(b) > 0
    for ca, cb in zip(a, b, strict=True):
        np.testing.assert_array_equal(ca.get_offsets(), cb.get_offsets())


def test_global_numpy_seed_restores_the_callers_state():
    np.random.seed(3)
    expected = np.random.random(3)
    np.random.seed(3)
    with global_numpy_seed(0):
        np.random.random(10)
    np.testing.assert_array_equal(np.random.random(3), expected)


def test_waterfall_draws_in_its_own_fenced_figure():
    values, X = _shap(n=50)
    specs = [FeatureSpec(c, "repayment", c.upper()) for c in X.columns]
    contribs = np.column_stack([values[:50], np.full(50, -2.0)])
    ex = explain(contribs, X, specs)
    with pyplot_scope():
        other = plt.gcf()  # a figure someone else left current
        fig = waterfall_plot(ex, 0, {s.name: s for s in specs}, title="Loan 1")
    assert fig is not other and not other.axes
    assert plt.get_fignums() == []


def test_new_figure_is_unknown_to_pyplot():
    fig, ax = new_figure((3, 2))
    ax.plot([0, 1], [0, 1])
    assert plt.get_fignums() == []
    assert fig.canvas.get_width_height() == (300, 200) or fig.get_size_inches().tolist() == [3, 2]
