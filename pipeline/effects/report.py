"""How the effect study reads: the plain-words summary and the HTML section of the run's report.

Reads an `EffectStudy` (plain data from `pipeline.effects.schema`); the figures are in
`pipeline.plotting.effects`.
"""

from __future__ import annotations

import html

import numpy as np
import pandas as pd

from pipeline.effects.heterogeneity import LinearCate, cate_table
from pipeline.effects.schema import (
    VERDICT_RAISES,
    VERDICT_REDUCES,
    VERDICT_SKIPPED,
    VERDICT_UNCLEAR,
    EffectStudy,
)
from pipeline.reporting import html as h


def summary_text(study: EffectStudy, truth_note: str = "") -> str:
    """Which levers reduce default (95% CI entirely below 0), which raise it, and where the data
    cannot tell (the CI spans 0); then the naive comparisons and the checks, one line each."""
    t = study.table
    snaps = study.snapshots
    on = (
        f" on a random sample of {study.customers:,} of the {study.customers_in_book:,} "
        "customers (effects.max_customers)"
        if study.sampled
        else ""
    )
    lines = [
        f"Relationship effect study: {len(t)} levers, {len(snaps)} snapshots "
        f"({snaps[0]} to {snaps[-1]}){on}"
        if snaps
        else f"Relationship effect study{on}",
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
        h.table(t[[c for c in cols if c in t]]),
        "<h3>Effects by risk tier</h3>",
        h.table(study.tiers),
        "<h3>Propensity overlap</h3>",
        h.table(study.overlap),
        "<h3>Heterogeneous effects (pp of PD: at the median customer, and per sd of each "
        "modifier)</h3>",
        h.table(cate_table([LinearCate(**c) for c in study.cate], study.config.alpha)),
        *_policy_html(study),
        "</section>",
    ]
    return "\n".join(parts)


# How to judge a contact policy where no simulator knows the counterfactual.
HOLDOUT_HOWTO = (
    "<p><b>Judging a policy on a real book.</b> Only a randomised hold-out shows what a policy "
    "does, because the lender's own contacts go to the customers it already sees as risky. "
    "Each month, before contacting, draw a random hold-out among the loans the policy would "
    "contact (say 10-20%, at random by customer, from a seeded draw that is stored) and do not "
    "contact them; contact the rest as recommended. Record for every eligible loan the "
    "assignment, the recommended lever, the predicted PD reduction and the exposure. After the "
    "12-month window, the policy's effect is the default rate of the held-out loans minus that "
    "of the contacted ones (with a confidence interval clustered by customer), and defaults "
    "avoided per 1,000 contacts follow from it. The same hold-out, ranked by the predicted "
    "reduction, gives each lever's Qini curve, and comparing policies (e.g. against the "
    "lender's usual targeting) needs each to be given to its own random share of the eligible "
    "loans. Size the hold-out for the effect sought: a 1 pp difference at a 10% default rate "
    "needs about 13.5 thousand loans per arm for 80% power at 5%; smaller books pool several "
    "months."
    "</p>"
)


def _policy_html(study: EffectStudy) -> list[str]:
    """The policy replay's tables (simulated book) and, always, how to judge a policy for real."""
    p = study.policy
    if p is None:
        return ["<h3>Judging the next-best action</h3>", HOLDOUT_HOWTO]
    return [
        "<h3>The next-best action replayed on the simulated book</h3>",
        f"<p>{html.escape(p.note)}. True defaults: the sum of the flagged loans' true 12-month "
        "PDs on the replayed path; avoided: against no contact; loss = PD x outstanding "
        "balance x LGD.</p>",
        h.table(p.table.rename(columns=POLICY_HEADERS), formats=POLICY_FORMATS),
        "<h4>Qini per lever on a held-out randomised trial (scikit-uplift)</h4>",
        h.table(p.qini),
        "<h3>Judging the next-best action</h3>",
        HOLDOUT_HOWTO,
    ]


def _lever_line(r: pd.Series) -> str:
    if r["verdict"] == VERDICT_SKIPPED:
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


# The policy table as a reader says it: money and defaults rounded for reading, not to 3 places.
POLICY_HEADERS = {
    "flagged_loans": "flagged loans",
    "true_defaults": "true defaults",
    "defaults_avoided": "defaults avoided",
    "defaults_avoided_per_1000": "defaults avoided per 1,000 contacts",
    "loss_avoided": "loss avoided",
    "loss_avoided_per_1000": "loss avoided per 1,000 contacts",
}
POLICY_FORMATS = {
    "true defaults": "{:,.1f}".format,
    "defaults avoided": "{:,.2f}".format,
    "defaults avoided per 1,000 contacts": "{:,.1f}".format,
    "loss avoided": "{:,.0f}".format,
    "loss avoided per 1,000 contacts": "{:,.0f}".format,
}
