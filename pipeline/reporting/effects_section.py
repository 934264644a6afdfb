"""The report's first screen: one small table per relationship lever, the causal answer first.

Each lever's table sets the effect study's estimate of the change in the 12-month PD (doubly
robust, 95% CI) beside the naive difference of default rates, the model's SHAP association of
the lever's feature and, on the simulated book, the true effect. Reads the study's table
(`effects.csv`, written by `loanrisk effects`) and the run's relationship-factors table; the
full study (tiers, overlap, refutations, figures) stays in its own section further down.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.core import catalogue
from pipeline.reporting import html as h

ANCHOR = "lever-effects"
TITLE = "Which relationship levers reduce default? (effect study)"


def section(effects_dir: Path | None, factors: pd.DataFrame | None) -> h.Section:
    """The section (id, title, HTML body): one table per lever of `effects_dir`'s effects.csv;
    an invitation to run the study when it has not run (`effects_dir` None or without it).

    factors: the run's relationship-factors table (feature, direction, share, rank), for the
    SHAP association of each lever's feature; None = not shown.
    """
    table = h.read_csv(effects_dir / catalogue.EFFECTS_CSV) if effects_dir is not None else None
    if table is None or table.empty:
        return h.section(
            ANCHOR,
            TITLE,
            "<p>The effect study has not run: set <code>effects.enabled: true</code> (the "
            "default) or run <code>loanrisk effects</code>. Without it the SHAP view below shows "
            "what the model uses, not what a lever does.</p>",
        )
    shap = _shap_by_feature(factors)
    has_truth = "true_effect_pp" in table.columns and table["true_effect_pp"].notna().any()
    cards = "".join(_lever_card(r, shap, has_truth) for r in table.to_dict("records"))
    intro = (
        '<p class="lead">Change in the probability of default within 12 months if the lever is '
        "applied, in percentage points (pp), from the effect study (doubly robust, controls "
        "taken before the contact, 95% CI clustered by customer). Negative = fewer defaults. "
        "The naive difference and the SHAP association are shown beside it because they are "
        "what a quick look gives: the lender contacts riskier customers more, so both can point "
        "the wrong way.</p>"
    )
    if has_truth:
        se = pd.to_numeric(table.get("true_effect_se_pp"), errors="coerce")
        worst = float(se.max()) if se is not None and se.notna().any() else 0.0
        intro += (
            "<p>Simulated book: <i>true effect</i> is the simulator's counterfactual answer "
            f"over the same rows (Monte-Carlo error up to {worst:.2f} pp where it was simulated "
            "on a sample of snapshots).</p>"
        )
    style = (
        "<style>.levers{display:grid;grid-template-columns:repeat(auto-fill,minmax(300px,1fr));"
        "gap:12px}.levers table{width:100%}.levers h3{margin:.2em 0}</style>"
    )
    return h.section(ANCHOR, TITLE, style + intro + f'<div class="levers">{cards}</div>')


def _lever_card(r: dict[str, Any], shap: dict[str, dict[str, Any]], has_truth: bool) -> str:
    name = str(r["lever"])
    rows = [("Verdict", str(r.get("verdict", "")))]
    if _num(r.get("ate_pp")) is not None:
        rows.append(
            (
                "Estimated effect [95% CI]",
                f"{r['ate_pp']:+.2f} pp [{r['ci_low_pp']:+.2f}, {r['ci_high_pp']:+.2f}]",
            )
        )
    else:
        rows.append(("Estimated effect", str(r.get("note") or "not estimated")))
    if _num(r.get("naive_pp")) is not None:
        rows.append(("Naive difference (treated - not)", f"{r['naive_pp']:+.2f} pp"))
    feat = r.get("feature")
    s = shap.get(str(feat)) if isinstance(feat, str) else None
    if s is not None:
        rows.append(
            (
                f"SHAP association ({feat})",
                f"{s['direction']} PD; {s['share']:.1%} of attribution, rank {s['rank']}",
            )
        )
    elif isinstance(feat, str):
        rows.append((f"SHAP association ({feat})", "not among the model's features"))
    if has_truth:
        true = _num(r.get("true_effect_pp"))
        if true is None:
            rows.append(("True effect (simulator)", "not simulated"))
        else:
            se = _num(r.get("true_effect_se_pp"))
            text = f"{true:+.2f} pp" + (f" (Monte-Carlo s.e. {se:.2f})" if se else "")
            covered = str(r.get("covered", "")).lower() == "true"
            rows.append(("True effect (simulator)", text + ("; in the CI" if covered else "")))
    n_t, n = _num(r.get("n_treated")), _num(r.get("n_rows"))
    if n_t is not None and n is not None:
        rows.append(("Loan-snapshots treated / studied", f"{int(n_t):,} / {int(n):,}"))
    body = "".join(f"<tr><th>{h.esc(k)}</th><td>{h.esc(v)}</td></tr>" for k, v in rows)
    title = h.esc(name.replace("_", " "))
    return f"<div><h3>{title}</h3><table><tbody>{body}</tbody></table></div>"


def _shap_by_feature(factors: pd.DataFrame | None) -> dict[str, dict[str, Any]]:
    if factors is None or "feature" not in factors.columns:
        return {}
    out = {}
    for r in factors.to_dict("records"):
        share = _num(r.get("share"))
        out[str(r["feature"])] = {
            "direction": str(r.get("direction", "?")),
            "share": share if share is not None else math.nan,
            "rank": r.get("rank", "?"),
        }
    return out


def _num(v: Any) -> float | None:
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) else x
