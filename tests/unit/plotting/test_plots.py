"""Each plot returns a Figure with the expected axes and lines and saves to a non-empty PNG."""

from __future__ import annotations

import matplotlib.colors
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from pipeline.config import ScoringConfig
from pipeline.plotting import performance as plots
from pipeline.riskmath import metrics, stability
from pipeline.riskmath.scaling import points

CFG = ScoringConfig()


@pytest.fixture(scope="module")
def book() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    z = rng.normal(size=3000)
    p = 1 / (1 + np.exp(3.0 - 1.2 * z))
    y = (rng.uniform(size=3000) < p).astype(int)
    return y, p


def saved(fig: Figure, tmp_path, name: str) -> int:
    path = tmp_path / f"{name}.png"
    fig.savefig(path, dpi=50)
    return path.stat().st_size


def test_roc_single_and_overlay(book, tmp_path):
    y, p = book
    before = plt.get_fignums()
    fig = plots.roc_curve_plot(y, p, "test")
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 1 and len(fig.axes[0].lines) == 2  # curve + diagonal
    assert "AUC" in fig.axes[0].get_legend().get_texts()[0].get_text()
    fig = plots.roc_curve_plot({"train": (y[:1500], p[:1500]), "test": (y[1500:], p[1500:])})
    assert len(fig.axes[0].lines) == 3
    assert fig.axes[0].get_xlabel() and fig.axes[0].get_title()
    assert saved(fig, tmp_path, "roc") > 0
    assert plt.get_fignums() == before  # nothing registered with pyplot, nothing to close
    with pytest.raises(ValueError, match="'flat'"):
        plots.roc_curve_plot({"flat": (np.zeros(5), np.linspace(0, 1, 5))})


@pytest.mark.parametrize("cfg", [None, CFG])
def test_ks_plot_marks_the_ks(book, tmp_path, cfg):
    y, p = book
    fig = plots.ks_plot(y, p, cfg)
    ax = fig.axes[0]
    assert len(fig.axes) == 1 and len(ax.lines) == 3
    marker = ax.lines[2]
    gap = np.ptp(marker.get_ydata())
    assert gap == pytest.approx(metrics.ks(y, p).statistic)
    assert ("points" in ax.get_xlabel()) == (cfg is not None)
    assert saved(fig, tmp_path, "ks") > 0


def test_gains_plot(book, tmp_path):
    y, p = book
    fig = plots.gains_plot(metrics.gains_table(y, p))
    assert len(fig.axes) == 2
    cap, lift = fig.axes
    assert len(cap.lines) == 3 and len(lift.lines) == 2
    assert len(lift.patches) == 10  # one bar per decile
    np.testing.assert_allclose(cap.lines[0].get_ydata()[-1], 1.0)
    assert saved(fig, tmp_path, "gains") > 0


def test_calibration_plot(book, tmp_path):
    y, p = book
    tables = {
        "train": metrics.calibration_table(y[:1500], p[:1500]),
        "test": metrics.calibration_table(y[1500:], p[1500:]),
    }
    fig = plots.calibration_plot(tables)
    assert len(fig.axes) == 1 and len(fig.axes[0].lines) == 3
    np.testing.assert_allclose(fig.axes[0].lines[0].get_xdata(), tables["train"]["mean_pd"])
    assert saved(fig, tmp_path, "calibration") > 0
    with pytest.raises(ValueError, match="no tables given"):
        plots.calibration_plot({})


def test_score_distribution_plot(book, tmp_path):
    y, p = book
    s = points(p, CFG)
    fig = plots.score_distribution_plot(s, y)
    assert len(fig.axes) == 1 and len(fig.axes[0].lines) == 0
    assert len(fig.axes[0].patches) > 0
    fig = plots.score_distribution_plot(s, y, CFG)
    lo, hi = np.quantile(s, [0.001, 0.999])
    inside = [b for b in list(plots.tier_bounds_points(CFG).values())[:-1] if lo < b < hi]
    assert len(fig.axes[0].lines) == len(inside) > 0
    assert saved(fig, tmp_path, "scores") > 0


def test_psi_plot(tmp_path):
    frame = pd.DataFrame(
        {"feature": [f"f{i}" for i in range(40)], "psi": np.linspace(0.0, 0.4, 40)}
    )
    frame["status"] = frame["psi"].map(stability.psi_status)
    fig = plots.psi_plot(frame, top=30)
    ax = fig.axes[0]
    assert len(fig.axes) == 1 and len(ax.lines) == 2
    assert sorted(line.get_xdata()[0] for line in ax.lines) == [0.1, 0.25]
    assert len(ax.patches) == 30
    # Largest PSI drawn last (at the top) and coloured as an alert.
    widths = [bar.get_width() for bar in ax.patches]
    assert widths == sorted(widths) and widths[-1] == pytest.approx(0.4)
    top_colour = matplotlib.colors.to_hex(ax.patches[-1].get_facecolor())
    assert top_colour == plots.STATUS_COLOURS["alert"]
    assert saved(fig, tmp_path, "psi") > 0
