"""The effect study's two figures: the forest plot of the effects and the propensity overlap.

Both take plain frames (the effect table, the rows studied per lever) and return a
`matplotlib.figure.Figure` drawn by the Agg canvas, built without pyplot (like
`pipeline.plotting.performance`): nothing global to close; save with `fig.savefig(...)` or log
with `mlflow.log_figure(fig, ...)`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

_EST_COLOUR = "#1f77b4"
_NAIVE_COLOUR = "#ff7f0e"
_TRUE_COLOUR = "#2e7d32"


def forest_plot(table: pd.DataFrame) -> Figure:
    """Estimate with its 95% CI per lever (blue), the naive difference beside it (orange) and the
    true effect where known (green); x in percentage points of PD. 1 axes.

    table: lever, window_months, ate_pp, ci_low_pp, ci_high_pp, naive_pp [, true_effect_pp];
    levers with no estimate (ate_pp NaN) are left out.
    """
    t = table.loc[table["ate_pp"].notna()].reset_index(drop=True)
    fig = Figure(figsize=(8, 1.2 + 0.7 * max(len(t), 1)))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    y = np.arange(len(t))[::-1].astype(float)
    ax.axvline(0, color="grey", lw=1, ls="--")
    ax.errorbar(
        t["ate_pp"],
        y + 0.12,
        xerr=[t["ate_pp"] - t["ci_low_pp"], t["ci_high_pp"] - t["ate_pp"]],
        fmt="o",
        color=_EST_COLOUR,
        capsize=4,
        label="doubly robust estimate, 95% CI",
    )
    ax.plot(t["naive_pp"], y - 0.12, "s", color=_NAIVE_COLOUR, label="naive difference")
    if "true_effect_pp" in t and t["true_effect_pp"].notna().any():
        ax.plot(t["true_effect_pp"], y, "D", color=_TRUE_COLOUR, ms=6, label="true effect")
    ax.set_yticks(y, [f"{r.lever} ({int(r.window_months)}m)" for r in t.itertuples()])
    ax.set_xlabel("Effect on the probability of default (percentage points); < 0 = fewer defaults")
    ax.set_title("Relationship levers: effect on default")
    ax.grid(axis="x", alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return fig


def overlap_plot(rows: Mapping[str, pd.DataFrame], bounds: tuple[float, float]) -> Figure:
    """Out-of-fold propensity histograms by arm, one panel per lever, trimming bounds dashed.

    rows: lever name -> its rows (columns `treated` 0/1 and `propensity`).
    """
    names = list(rows)
    n = max(len(names), 1)
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    fig = Figure(figsize=(4.2 * ncols, 3.2 * nrows))
    FigureCanvasAgg(fig)
    bins = np.linspace(0, 1, 41)
    for i, name in enumerate(names):
        ax = fig.add_subplot(nrows, ncols, i + 1)
        r = rows[name]
        for arm, colour, label in ((1, _NAIVE_COLOUR, "treated"), (0, _EST_COLOUR, "control")):
            p = r.loc[r["treated"] == arm, "propensity"]
            ax.hist(
                p, bins=bins, density=True, alpha=0.5, color=colour, label=f"{label} ({len(p):,})"
            )
        for b in bounds:
            ax.axvline(b, color="grey", ls="--", lw=1)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("P(treated | pre-window controls)")
        ax.legend(fontsize=7)
    fig.suptitle("Propensity overlap by arm (dashed: trimming bounds)")
    fig.tight_layout()
    return fig


def qini_plot(curves: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> Figure:
    """Qini curves of the policy replay's randomised trial, one line per lever: loans targeted in
    order of the lever's estimated PD reduction (x) against the incremental non-defaults among
    them (y, scikit-uplift's `qini_curve`), with the random-targeting diagonal dashed. 1 axes.

    curves: lever -> (x, y) as `qini_curve` returns them; no curve gives an empty axes.
    """
    fig = Figure(figsize=(8, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for i, (lever, (x, y)) in enumerate(curves.items()):
        colour = f"C{i}"
        ax.plot(x, y, color=colour, lw=1.6, label=lever)
        if len(x):
            ax.plot([0, x[-1]], [0, y[-1]], color=colour, lw=0.8, ls="--")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("Flagged loans in the trial's two arms, most estimated PD reduction first")
    ax.set_ylabel("Incremental non-defaults (Qini)")
    ax.set_title("Qini curves per lever on a held-out randomised trial (dashed: random order)")
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    return fig
