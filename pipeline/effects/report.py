"""How the effect study reads: the plain-words summary, the HTML section, and its two plots.

Figures are built without pyplot (like `pipeline.plots`): nothing global to close; save with
`fig.savefig(...)` or log with `mlflow.log_figure(fig, ...)`.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

if TYPE_CHECKING:
    from pipeline.effects.study import EffectStudy

_EST_COLOUR = "#1f77b4"
_NAIVE_COLOUR = "#ff7f0e"
_TRUE_COLOUR = "#2e7d32"


def summary_text(study: EffectStudy, truth_note: str = "") -> str:
    """Which levers reduce default (95% CI entirely below 0), which raise it, and where the data
    cannot tell (the CI spans 0); then the naive comparisons and the checks, one line each."""
    from pipeline.effects.study import (
        VERDICT_RAISES,
        VERDICT_REDUCES,
        VERDICT_SKIPPED,
        VERDICT_UNCLEAR,
    )

    t = study.table
    snaps = study.snapshots
    lines = [
        f"Relationship effect study: {len(t)} levers, {len(snaps)} snapshots "
        f"({snaps[0]} to {snaps[-1]})"
        if snaps
        else "Relationship effect study",
        "Effects are on the probability of default within the performance window, in "
        "percentage points (pp), "
        "doubly robust with pre-window controls; 95% CIs clustered by customer.",
    ]
    groups = [
        (VERDICT_REDUCES, "Reduce default (CI entirely below 0)"),
        (VERDICT_RAISES, "Raise default (CI entirely above 0)"),
        (VERDICT_UNCLEAR, "The data cannot tell (CI spans 0)"),
        (VERDICT_SKIPPED, "Not estimated"),
    ]
    for key, title in groups:
        sub = t.loc[t["verdict"] == key]
        if sub.empty:
            lines.append(f"{title}: none.")
            continue
        lines.append(f"{title}:")
        for _, r in sub.iterrows():
            lines.append("  - " + _lever_line(r))
    naive = t.loc[t["verdict"] != VERDICT_SKIPPED]
    flips = naive.loc[np.sign(naive["naive_pp"]) != np.sign(naive["ate_pp"])]
    if len(flips):
        names = ", ".join(flips["lever"])
        lines.append(
            f"A naive comparison of default rates gets the sign wrong for {names}: the lender "
            "contacts riskier customers more, so treated customers default more whatever the "
            "lever does."
        )
    checks = []
    ran = t.loc[t["placebo_pass"].notna()] if "placebo_pass" in t else t.iloc[:0]
    if len(ran):
        failed = ran.loc[~ran["placebo_pass"].astype(bool), "lever"].tolist()
        checks.append("placebo failed for " + ", ".join(failed) if failed else "placebo passed")
    ran = t.loc[t["rcc_pass"].notna()] if "rcc_pass" in t else t.iloc[:0]
    if len(ran):
        failed = ran.loc[~ran["rcc_pass"].astype(bool), "lever"].tolist()
        checks.append(
            "a random common cause moved " + ", ".join(failed)
            if failed
            else "a random common cause did not move the estimates"
        )
    poor = t.loc[t["overlap"] == "poor", "lever"].tolist()
    checks.append("poor overlap (trimmed) for " + ", ".join(poor) if poor else "overlap ok")
    lines.append("Checks: " + "; ".join(checks) + ".")
    if "true_effect_pp" in t:
        est = t.loc[t["true_effect_pp"].notna()]
        lines.append(
            f"Against the simulator's truth: {int(est['covered'].sum())} of {len(est)} CIs "
            "cover the true effect. " + truth_note
        )
    elif truth_note:
        lines.append(truth_note)
    return "\n".join(lines)


def _lever_line(r: pd.Series) -> str:
    if r["verdict"] == "not estimated":
        return f"{r['lever']}: {r['note']}"
    text = (
        f"{r['lever']}: {r['ate_pp']:+.2f} pp [{r['ci_low_pp']:+.2f}, {r['ci_high_pp']:+.2f}] "
        f"(naive {r['naive_pp']:+.2f} pp; {int(r['n_treated']):,} treated of "
        f"{int(r['n_rows']):,} loan-snapshots, {int(r['window_months'])}-month window)"
    )
    if "true_effect_pp" in r and not pd.isna(r["true_effect_pp"]):
        text += f"; true {r['true_effect_pp']:+.2f} pp"
    if r.get("note"):
        text += f"; {r['note']}"
    return text


def html_section(study: EffectStudy) -> str:
    """A self-contained HTML fragment (<section>) for the run's report: the summary and tables."""
    t = study.table
    cols = [
        "lever",
        "window_months",
        "n_treated",
        "n_control",
        "naive_pp",
        "ate_pp",
        "ci_low_pp",
        "ci_high_pp",
        "verdict",
        "trimmed_share",
        "placebo_pp",
        "placebo_pass",
        "rcc_shift_se",
    ]
    if "true_effect_pp" in t:
        cols[5:5] = ["true_effect_pp"]
    parts = [
        '<section id="effects"><h2>Relationship effect study</h2>',
        "<pre>" + html.escape(summary_text(study)) + "</pre>",
        "<h3>Effects by lever (percentage points of PD)</h3>",
        _html_table(t[[c for c in cols if c in t]]),
        "<h3>Effects by risk tier</h3>",
        _html_table(study.tiers),
        "<h3>Propensity overlap</h3>",
        _html_table(study.overlap),
        "</section>",
    ]
    return "\n".join(parts)


def _html_table(df: pd.DataFrame) -> str:
    return df.to_html(index=False, float_format=lambda v: f"{v:.3f}", na_rep="", border=0)


def forest_plot(table: pd.DataFrame) -> Figure:
    """Estimate with its 95% CI per lever (blue), the naive difference beside it (orange) and the
    true effect where known (green); x in percentage points of PD. 1 axes."""
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
    """Out-of-fold propensity histograms by arm, one panel per lever, trimming bounds dashed."""
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
