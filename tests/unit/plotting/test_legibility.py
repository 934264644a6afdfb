"""Plots a reader can read: no label cut off at the figure's edge, no tick label saying "0%" for
0.1%, no two tick labels on top of each other (issue 15's report defects)."""

from __future__ import annotations

import io

import numpy as np
import optuna
import pandas as pd
import pytest
from matplotlib.figure import Figure
from PIL import Image

from pipeline.core.metadata import FeatureSpec
from pipeline.plotting.performance import ks_plot
from pipeline.plotting.shap_plots import dependence_plot
from pipeline.plotting.tuning import study_figures

LONG = (
    "Share of reminded instalments (reminder in the 10 days before due) paid on time, last 12 "
    "months"
)


def _book(lo: float, hi: float, n: int = 800, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = np.exp(rng.uniform(np.log(lo), np.log(hi), n))
    return (rng.uniform(size=n) < p).astype(int), p


def _visible_labels(fig: Figure, axis) -> list:
    fig.canvas.draw()
    lo, hi = sorted(axis.axes.get_xlim())
    return [
        (tick, label)
        for tick, label in zip(axis.get_majorticklocs(), axis.get_ticklabels(), strict=True)
        if lo <= tick <= hi and label.get_text()
    ]


@pytest.mark.parametrize(
    ("lo", "hi"),
    [(0.15, 0.6), (0.05, 0.6), (0.0005, 0.9)],
    ids=["German Credit's narrow PDs", "two decades", "four decades"],
)
def test_ks_log_axis_labels_are_distinct_percentages_that_do_not_overlap(lo, hi):
    y, p = _book(lo, hi)
    fig = ks_plot(y, p)
    ax = fig.axes[0]
    labels = _visible_labels(fig, ax.xaxis)
    texts = [label.get_text() for _, label in labels]
    assert len(texts) >= 3, texts
    assert "0%" not in texts and len(set(texts)) == len(texts), texts
    # Each label states its tick's value.
    for tick, text in zip((t for t, _ in labels), texts, strict=True):
        assert float(text.rstrip("%")) == pytest.approx(tick * 100, rel=1e-3), text
    boxes = sorted(
        (label.get_window_extent() for _, label in labels), key=lambda b: b.x0
    )  # the axis is reversed: sort by position on the page
    for left, right in zip(boxes, boxes[1:], strict=False):
        assert left.x1 <= right.x0, texts
    assert not any(t.get_text() for t in ax.xaxis.get_minorticklabels())


def test_tuning_importance_labels_stay_inside_the_figure():
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0))
    study.optimize(
        lambda t: (
            t.suggest_float("learning_rate", 0.01, 0.3)
            - t.suggest_int("min_child_samples", 5, 200) / 1000
        ),
        n_trials=8,
    )
    fig = study_figures(study)["tuning_param_importances.png"]
    fig.canvas.draw()  # as MLflow saves it: the figure's own size, no tight bounding box
    width, height = fig.canvas.get_width_height()
    labels = [t for t in fig.axes[0].get_yticklabels() if t.get_text()]
    assert {t.get_text() for t in labels} == {"learning_rate", "min_child_samples"}
    for label in labels:
        box = label.get_window_extent()
        assert box.x0 >= 0 and box.x1 <= width, label.get_text()


def test_dependence_title_is_whole_and_fits_the_figure():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(200, 3)), columns=["share_paid", "dpd_now", "tenure"])
    values = X.to_numpy() * np.array([0.5, -0.3, 0.2])
    fig, _ = dependence_plot(
        "share_paid", values, X, FeatureSpec("share_paid", "relationship", LONG)
    )
    title = fig.axes[0].get_title()
    assert " ".join(title.split()) == LONG  # wrapped over lines, nothing cut
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight")  # as `save_png` writes it
    fig.canvas.draw()
    extent = fig.axes[0].title.get_window_extent()
    assert extent.width <= Image.open(buf).size[0]
