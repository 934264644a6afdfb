"""The run report's page: one section per question a reviewer asks, the answer first.

`render(inputs)` returns the whole self-contained HTML page (images embedded as base64 PNG, no
external asset, so the file can be mailed). The page is a list of `html.Section`s (id, title,
body); the table of contents is made from that list, so a new section is one more entry.
Long tables and plot sets sit behind `<details>`, closed.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.core import catalogue
from pipeline.core.catalogue import RunFiles
from pipeline.reporting import effects_section, validation
from pipeline.reporting import html as h
from pipeline.reporting.inputs import (
    EFFECTS_PLOTS,
    PLOTS,
    TUNING_PLOTS,
    ReportInputs,
    plot_place,
)

SPLITS = ("train", "valid", "test")


CAVEAT = "SHAP values show what the model uses, not what causes default."
CRM_CAVEAT = (
    "Lenders contact risky customers more (reminders, hardship calls, collections), so a "
    "contact feature can raise the predicted PD even when the contact itself helps. Whether a "
    "lever reduces default is a causal question"
)
EFFECTS_ID = "effect-study"


# -- rendering -----------------------------------------------------------------------------------
def render(inp: ReportInputs) -> str:
    plots: dict[str, list[tuple[str, str]]] = {}
    known = list(PLOTS)  # the known plots in the order PLOTS gives, then the rest by name
    files = sorted(
        RunFiles(inp.run_dir).pngs(),
        key=lambda p: (known.index(p.name) if p.name in known else len(known), p.name),
    )
    for p in files:
        place, caption = plot_place(p.name)
        plots.setdefault(place, []).append((p.name, caption))

    def figures(place: str) -> str:
        return "".join(
            h.figure((inp.run_dir / n).read_bytes(), cap) for n, cap in plots.get(place, [])
        )

    def grid(place: str) -> str:  # plots of about 6 inches: two abreast at 1280 px
        return h.grid([figures(place)]) if plots.get(place) else ""

    sections = [
        effects_section.section(
            inp.effects_dir, h.read_csv(RunFiles(inp.run_dir).csv(catalogue.RELATIONSHIP_FACTORS))
        ),
        _answer(inp, figures("explain")),
        _dependence(inp, plots.get("dependence", [])),
        _examples(figures("examples")),
        _data_summary(inp),
        _performance(inp, grid("performance")),
        _gains(inp, figures("gains")),
        _segments(inp),
        validation.section(inp, figures("validation")),
        _stability(inp, figures("stability")),
        _tuning(inp),
        _promotion(inp),
        _more_plots(figures("more")),
        _effects(inp),
    ]
    shown = [s for s in sections if s is not None]
    title = f"loanrisk run {inp.run_id}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{h.esc(title)}</title><style>{h.CSS}</style></head><body>\n"
        + _header(inp)
        + h.contents(shown)
        + "\n"
        + "\n".join(s.render() for s in shown)
        + "\n"
        + _footer(inp)
        + "\n</body></html>\n"
    )


def model_label(inp: ReportInputs) -> str:
    """The model as its registry names it ("loanrisk v3"), or its URI before it is registered."""
    version = inp.latest.get("model_version")
    if version:
        return f"{inp.model_name} v{version}"
    return str(inp.latest.get("model_uri") or "-")


def _header(inp: ReportInputs) -> str:
    test = inp.metrics.get("test") or {}
    d = inp.latest.get("decision") or {}
    kind = inp.metrics.get("split_kind") or inp.run_tags.get("split_kind", "?")
    facts = [
        ("test AUC", h.fmt(test.get("auc", inp.latest.get("test_auc")))),
        ("Gini", h.fmt(test.get("gini"))),
        ("KS", h.fmt(test.get("ks"))),
        ("split", "out of time" if kind == "out_of_time" else f"{kind} (not out of time)"),
        ("model", model_label(inp)),
        ("champion", _verdict(d, "promoted", "not promoted")),
    ]
    boxes = "".join(
        f'<div class="kpi"><div class="v">{h.esc(v)}</div><div class="k">{h.esc(k)}</div></div>'
        for k, v in facts
    )
    version = inp.latest.get("model_version")
    uri = f"models:/{inp.model_name}/{version}" if version else inp.latest.get("model_uri", "")
    return (
        f'<header><h1>Loan-default model: run report</h1><p class="meta">run '
        f"<code>{h.esc(inp.run_id)}</code> &middot; model <b>{h.esc(model_label(inp))}</b> "
        f"(<code>{h.esc(uri)}</code>) &middot; data {h.esc(inp.data_kind)}: "
        f'<code>{h.esc(inp.data_source)}</code></p><div class="kpis">{boxes}</div></header>'
    )


def _shap_rows(inp: ReportInputs) -> str:
    """Which test rows the SHAP tables read: all, or a sample (`explain.max_rows`)."""
    n = inp.run_metrics.get("explain_rows")
    total = ((inp.metrics.get("splits") or {}).get("test") or {}).get("n")
    if not n:
        return ""
    if total and n < total:
        return (
            f"<p>Mean |SHAP| over a random sample of {n:,.0f} of the {total:,.0f} test rows "
            "(<code>explain.max_rows</code>).</p>"
        )
    return f"<p>Mean |SHAP| over the {n:,.0f} test rows.</p>"


def _answer(inp: ReportInputs, plots: str) -> h.Section:
    """The business question first: which relationship factors go with lower default."""
    rel = h.read_csv(RunFiles(inp.run_dir).csv(catalogue.RELATIONSHIP_FACTORS))
    imp = h.read_csv(RunFiles(inp.run_dir).csv(catalogue.SHAP_IMPORTANCE))
    fam = h.read_csv(RunFiles(inp.run_dir).csv(catalogue.SHAP_BY_FAMILY))
    truth = h.read_csv(RunFiles(inp.run_dir).csv(catalogue.TRUTH_RECOVERY))
    title = "Which relationship factors reduce default?"
    if imp is None and rel is None:
        return h.section(
            "answer",
            title,
            f"<p>No SHAP tables in <code>{h.esc(inp.run_dir)}</code>: run <code>loanrisk explain"
            "</code>.</p>",
        )
    parts = []
    if rel is not None and len(rel):
        lowers = rel[rel["direction"] == "lowers"].sort_values("rank")
        raises = rel[rel["direction"] == "raises"].sort_values("rank")
        if len(lowers):
            items = "".join(
                f"<li><b>{h.esc(r.description)}</b> (<code>{h.esc(r.feature)}</code>): "
                f"{r.share:.1%} of the model's attribution, overall rank {int(r.rank)}"
                f"{_agreement(r)}</li>"
                for r in lowers.head(5).itertuples()
            )
            parts.append(
                '<p class="lead">In the model, more of these relationship factors goes with a '
                f"<b>lower</b> predicted PD (strongest first):</p><ol>{items}</ol>"
            )
        else:
            parts.append('<p class="lead">No relationship factor lowers the predicted PD.</p>')
        if len(raises):
            names = ", ".join(h.esc(r.description) for r in raises.head(5).itertuples())
            parts.append(f"<p>Relationship factors that go with a <b>higher</b> PD: {names}.</p>")
    else:
        parts.append(
            '<p class="lead">This data has no relationship (CRM) features, so it cannot answer '
            "the question; below are the features the model uses most.</p>"
        )
    parts.append(f'<p class="caveat"><b>Read with care.</b> {_caveat(inp, rel)}</p>')
    if truth is not None and len(truth):
        # Tables from before the checks existed count every row as checked.
        every = pd.Series(True, index=truth.index)
        checked = _true(truth["checked"]) if "checked" in truth else every
        matched = int((checked & _true(truth["matches"])).sum())
        parts.append(
            f"<p>Simulated book: the model recovers <b>{matched} of the {int(checked.sum())}</b> "
            f"planted effects SHAP can show ({len(truth) - int(checked.sum())} more listed but not "
            "checked; table below).</p>"
        )
    if fam is not None:
        parts.append("<h3>Attribution by feature family</h3>")
        parts.append(_shap_rows(inp))
        parts.append(h.table(fam, pct=("share",)))
    if rel is not None and len(rel):
        ranked = []
        cols = [
            "rank",
            "feature",
            "description",
            "share",
            "direction",
            "expected",
            "agrees",
            "constrained",
            "stable_share",
            "turns",
        ]
        cols = [c for c in cols if c in rel.columns]
        ranked.append(h.table(rel.head(20), cols=cols, pct=("share", "stable_share")))
        if "stable_share" in rel.columns:
            ranked.append(
                "<p><i>stable_share</i>: the share of refits of this model on customers drawn "
                "with replacement that give the factor the same direction. Below 100%, the "
                "direction is one model's choice more than the data's.</p>"
            )
        if "constrained" in rel.columns and _true(rel["constrained"]).any():
            ranked.append(
                "<p>A <i>constrained</i> factor was trained monotone in its expected direction "
                "(train.monotone_constraints): its direction is imposed, not found; the model "
                "can only use it that way or not at all.</p>"
            )
        shown = min(len(rel), 20)
        parts.append(
            h.collapsed(
                f"Relationship factors, ranked by mean |SHAP| ({shown} of {len(rel)})",
                "".join(ranked),
            )
        )
    elif imp is not None:
        parts.append("<h3>Top features, ranked by mean |SHAP|</h3>")
        cols = ["rank", "feature", "family", "share", "direction"]
        parts.append(h.table(imp.head(15), cols=cols, pct=("share",)))
    if truth is not None and len(truth):
        parts.append("<h3>Planted effects vs what the model found (simulated book)</h3>")
        truth = with_effect_study(truth, inp.effects_dir)
        note = TRUTH_NOTE + (EFFECT_STUDY_NOTE if "effect_study" in truth.columns else "")
        parts.append(f"<p>{h.esc(note)}</p>")
        cols = [c for c in TRUTH_COLUMNS if c in truth.columns]
        shown = truth[cols].rename(columns=TRUTH_COLUMNS)
        parts.append(h.table(shown, wide=("verdict", "effect study")))
    parts.append(plots)
    return h.section("answer", title, "".join(parts))


# The truth table's columns and their headers: words that wrap, so the verdict keeps its room.
TRUTH_COLUMNS = {
    "effect": "effect",
    "kind": "kind",
    "feature": "feature",
    "planted_direction": "planted direction",
    "planted_attribution": "planted size",
    "confounding": "exposure bias",
    "found_direction": "found direction",
    "mean_abs_shap": "model's mean |SHAP|",
    "rank": "rank",
    "verdict": "verdict",
    "effect_study": "effect study",
}


TRUTH_NOTE = (
    "Planted size is the effect's mean |SHAP| in the oracle (log-odds), the model's mean |SHAP| "
    "what the model gives the effect's features; exposure bias says whether who gets the "
    "effect pushes it the same way or the opposite way. An effect is checked when it is large "
    "enough to show and who gets it does not bias it against its direction; the effects the lender "
    "targets at risky customers are for the effect study. The planted null must rank below "
    "every checked effect."
)
EFFECT_STUDY_NOTE = " Effect study: the study's estimate for the lever, in PD points."


def with_effect_study(truth: pd.DataFrame, effects_dir: Path | None) -> pd.DataFrame:
    """The truth table with the effect study's estimate of each lever (pp of 12-month PD, 95%
    CI, and the truth when the study had it), where the study has run."""
    table = h.read_csv(effects_dir / catalogue.EFFECTS_CSV) if effects_dir is not None else None
    if table is None or "lever" not in truth.columns:
        return truth
    by_lever = table.set_index("lever")

    def lever_cell(lever: object) -> str:
        if not isinstance(lever, str) or lever not in by_lever.index:
            return ""
        r = by_lever.loc[lever]
        text = f"{r['ate_pp']:+.2f} pp [{r['ci_low_pp']:+.2f}, {r['ci_high_pp']:+.2f}]"
        if "true_effect_pp" in r and pd.notna(r["true_effect_pp"]):
            text += f", truth {r['true_effect_pp']:+.2f}"
        return text

    return truth.assign(effect_study=truth["lever"].map(lever_cell))


def _caveat(inp: ReportInputs, rel: pd.DataFrame | None) -> str:
    """The causal caveat; the CRM part only for data with relationship features, and a link to
    the effect study only when its section is on the page."""
    if rel is None or not len(rel):
        return h.esc(CAVEAT)
    text = f"{h.esc(CAVEAT)} {h.esc(CRM_CAVEAT)}"
    if inp.effects_dir is not None:
        # No "below": the study's section may move (it is one entry of the page's list).
        return f'{text}: see the <a href="#{EFFECTS_ID}">relationship effect study</a>.'
    return f"{text}, which <code>loanrisk effects</code> (the relationship effect study) answers."


def _dependence(inp: ReportInputs, plots: list[tuple[str, str]]) -> h.Section | None:
    """The dependence plot of every relationship factor the model uses, in a grid, closed."""
    if not plots:
        return None
    rel = h.read_csv(RunFiles(inp.run_dir).csv(catalogue.RELATIONSHIP_FACTORS))
    rank = {}
    if rel is not None and "feature" in rel:
        rank = {str(f): i for i, f in enumerate(rel["feature"])}
    ordered = sorted(plots, key=lambda p: (rank.get(p[1], len(rank)), p[1]))
    figs = [
        h.figure((inp.run_dir / n).read_bytes(), f"{feature}: SHAP against its value.")
        for n, feature in ordered
    ]
    intro = (
        "<p>How each relationship factor the model uses moves the PD: its SHAP value (log-odds) "
        "against its value, one point per sampled loan, coloured by the feature it interacts "
        "with most. Strongest factor first.</p>"
    )
    body = intro + h.collapsed(f"Show the {len(figs)} dependence plots", h.grid(figs))
    return h.section("dependence", "How each relationship factor acts", body)


def _examples(plots: str) -> h.Section | None:
    if not plots:
        return None
    intro = (
        "<p>Three loans of the test split, at low, median and high predicted risk: the features "
        "that move each one's PD away from the average, largest first.</p>"
    )
    return h.section("examples", "Three example loans", intro + plots)


def _more_plots(plots: str) -> h.Section | None:
    if not plots:
        return None
    return h.section("more-plots", "More plots", h.collapsed("Show the plots", plots))


def _true(col: pd.Series) -> pd.Series:
    """A CSV-read boolean column as booleans (missing = False)."""
    return col.astype(str).str.lower().eq("true")


def _agreement(r: Any) -> str:
    agrees = str(getattr(r, "agrees", "")).lower()
    if agrees == "true":
        return "; as the business expects"
    if agrees == "false":
        return f"; <i>the business expects it to {h.esc(r.expected)} PD</i>"
    return ""


def _data_summary(inp: ReportInputs) -> h.Section:
    splits = inp.metrics.get("splits") or {}
    kind = inp.metrics.get("split_kind") or inp.run_tags.get("split_kind", "?")
    dates = inp.metrics.get("split_dates") or {}
    rows = []
    for k in SPLITS:
        s = splits.get(k, {})
        n = s.get("n", inp.run_metrics.get(f"{k}_rows"))
        d = dates.get(k) or []
        rows.append(
            {
                "split": k,
                "rows": n,
                "defaults": s.get("n_defaults"),
                "default rate": s.get("default_rate", inp.run_metrics.get(f"{k}_default_rate")),
                "dates": f"{d[0]} .. {d[-1]} ({len(d)})" if d else "",
            }
        )
    df = pd.DataFrame(rows)
    total = pd.to_numeric(df["rows"], errors="coerce").sum()
    if kind == "random":
        how = (
            '<p class="warn"><b>The split is random</b> (stratified by the target, fixed seed): '
            "the data has no time column, so the test metrics are not out of time and can be "
            "optimistic for a future portfolio.</p>"
        )
        df = df.drop(columns="dates")
    else:
        how = (
            "<p>Out-of-time split by snapshot date: the model is trained on earlier snapshots, "
            "validated and tested on later ones (dates: first .. last (count)).</p>"
            + _purge_gap(inp, dates, int(total))
        )
    nf = inp.run_tags.get("n_features", "?")
    intro = (
        f"<p>{int(total):,} labelled rows, {h.esc(nf)} features; data: {h.esc(inp.data_kind)} "
        f"(<code>{h.esc(inp.data_source)}</code>).</p>"
    )
    return h.section("data", "Data", intro + how + h.table(df, pct=("default rate",)))


def _purge_gap(inp: ReportInputs, dates: dict, used: int) -> str:
    """Why training stops a window before validation, and what that costs in rows."""
    train, valid = dates.get("train") or [], dates.get("valid") or []
    if not train or not valid:
        return ""
    if inp.gap_months == 0:
        return (
            f"<p>Training ends at {h.esc(train[-1])} and validation starts at "
            f"{h.esc(valid[0])}, with no purge gap (<code>split.gap_months</code> 0): a "
            "label window that reaches into validation can make the validation AUC "
            "optimistic.</p>"
        )
    months = f"{inp.gap_months}-month " if inp.gap_months is not None else ""
    text = (
        f"Training ends at {h.esc(train[-1])} and validation starts at {h.esc(valid[0])}: a "
        f"{months}purge gap, so that no training label window (a loan's next "
        "performance window) overlaps the validation windows; otherwise a loan that defaults "
        "there would be a positive in both, and tuning would reward memorising loans."
    )
    if inp.labelled_rows and inp.labelled_rows >= used:
        left = inp.labelled_rows - used
        text += (
            f" The snapshots in the gap are left out: <b>{used:,} of the "
            f"{inp.labelled_rows:,}</b> labelled rows are used ({left:,} left out, "
            f"{left / inp.labelled_rows:.0%})."
        )
    return f"<p>{text}</p>"


def _performance(inp: ReportInputs, plots: str) -> h.Section:
    splits = inp.metrics.get("splits") or {}
    if not splits:
        return h.section(
            "performance",
            "Model performance",
            "<p>No metrics: run <code>loanrisk evaluate</code>.</p>" + plots,
        )
    keys = [
        ("auc", "AUC"),
        ("gini", "Gini"),
        ("ks", "KS"),
        ("ks_cutoff", "KS cut-off (PD)"),
        ("brier", "Brier"),
        ("log_loss", "log loss"),
        ("pr_auc", "PR-AUC"),
        ("default_rate", "default rate"),
        ("mean_pd", "mean PD"),
        ("raw_auc", "AUC raw"),
        ("raw_brier", "Brier raw"),
        ("raw_log_loss", "log loss raw"),
    ]
    rows = [
        {"split": k, **{label: splits[k].get(m) for m, label in keys}}
        for k in SPLITS
        if k in splits
    ]
    table = h.table(pd.DataFrame(rows), pct=("default rate", "mean PD"))
    cal = inp.latest.get("calibration", "?")
    briers = {
        k.removeprefix("calibration_brier_"): v
        for k, v in inp.run_metrics.items()
        if k.startswith("calibration_brier_")
    }
    extra = [f"Calibration: <b>{h.esc(cal)}</b>, chosen by Brier on the validation split"]
    if briers:
        extra[0] += " (" + ", ".join(f"{h.esc(k)} {v:.4f}" for k, v in sorted(briers.items())) + ")"
    for key, label in (
        ("oracle_auc", "Oracle AUC (the simulator's true PD on the test rows: the best possible)"),
        ("baseline_auc", "Logistic-regression baseline AUC on the same features"),
    ):
        if inp.metrics.get(key) is not None:
            extra.append(f"{label}: <b>{h.fmt(inp.metrics[key])}</b>")
    unseen = inp.metrics.get("unseen_customers")
    if unseen:
        test_auc = splits.get("test", {}).get("auc")
        extra.append(
            f"Test AUC on customers unseen in training (in no training or validation row): "
            f"<b>{h.fmt(unseen['auc'])}</b>, against {h.fmt(test_auc)} out of time on all test "
            f"rows; {unseen['n']:,.0f} rows ({unseen['share_of_test'] or 0:.0%} of the test "
            f"split), "
            f"{unseen['n_customers']:,.0f} customers, {unseen['n_defaults']:,.0f} defaults"
            + (
                f"; oracle AUC on the same rows {h.fmt(unseen['oracle_auc'])}"
                if unseen.get("oracle_auc") is not None
                else ""
            )
            + ". The out-of-time split keeps customers across splits, as production does; the "
            "gap between the two AUCs is what recognising a customer is worth."
        )
    with_, free, pair = _constraints_cost(inp)
    if free is not None:
        how = (
            f"two uncalibrated refits with the tuned parameters, both on the tuning sample of "
            f"{pair:,.0f} training rows"
            if pair is not None
            else "uncalibrated refit with the same parameters"
        )
        extra.append(
            f"Test AUC with monotone constraints {h.fmt(with_)} vs without {h.fmt(free)} ({how})"
        )
    notes = "<ul>" + "".join(f"<li>{x}</li>" for x in extra) + "</ul>"
    intro = (
        "<p>Metrics of the calibrated PD per split; <i>raw</i> columns are the booster's "
        "uncalibrated output.</p>"
    )
    return h.section("performance", "Model performance", intro + table + notes + plots)


def _gains(inp: ReportInputs, plots: str) -> h.Section | None:
    g = h.read_csv(RunFiles(inp.run_dir).csv(catalogue.GAINS_TEST))
    cal = h.read_csv(RunFiles(inp.run_dir).csv(catalogue.CALIBRATION_TEST))
    if g is None and not plots:
        return None
    parts = []
    if g is not None:
        cols = [
            "decile",
            "n",
            "n_defaults",
            "default_rate",
            "min_pd",
            "max_pd",
            "cum_capture",
            "lift",
            "cum_lift",
        ]
        parts.append("<p>Test split by PD decile, riskiest first.</p>")
        parts.append(h.table(g, cols=cols, pct=("default_rate", "cum_capture")))
    if cal is not None:
        cols = ["bin", "n", "n_defaults", "mean_pd", "observed_rate", "observed_lo", "observed_hi"]
        bins = h.table(
            cal, cols=cols, pct=("mean_pd", "observed_rate", "observed_lo", "observed_hi")
        )
        parts.append(h.collapsed(f"Calibration by PD bin, test split ({len(cal)} bins)", bins))
    parts.append(plots)
    return h.section("gains", "Gains, lift and calibration", "".join(parts))


def _segments(inp: ReportInputs) -> h.Section:
    s = h.read_csv(RunFiles(inp.run_dir).csv(catalogue.SEGMENTS_TEST))
    if s is None or not len(s):
        return h.section(
            "segments", "Segments", "<p>No segment columns (product, region) in this data.</p>"
        )
    by = [c for c in s["segment"].unique()]
    parts = []
    for col in by:
        sub = s[s["segment"] == col]
        cols = [
            col,
            "n",
            "n_defaults",
            "share",
            "default_rate",
            "mean_pd",
            "auc",
            "gini",
            "ks",
            "brier",
        ]
        parts.append(
            h.collapsed(
                f"By {col} ({len(sub)} groups)",
                h.table(sub, cols=cols, pct=("share", "default_rate", "mean_pd")),
            )
        )
    return h.section("segments", "Segments (test split)", "".join(parts))


def _stability(inp: ReportInputs, plots: str) -> h.Section | None:
    psi = h.read_csv(RunFiles(inp.run_dir).csv(catalogue.PSI_TRAIN_TEST))
    score_psi = inp.metrics.get("score_psi_train_test")
    parts = []
    if score_psi is not None:
        parts.append(
            f"<p>PSI of the score, train vs test: <b>{h.fmt(score_psi)}</b> "
            "(below 0.1 stable, 0.1-0.25 watch, above 0.25 shifted).</p>"
        )
    if psi is not None:
        top = psi.sort_values("psi", ascending=False).head(15)
        counts = psi["status"].value_counts().to_dict() if "status" in psi else {}
        if counts:
            parts.append(
                "<p>Features by PSI status: "
                + ", ".join(f"{h.esc(k)} {v}" for k, v in sorted(counts.items()))
                + ".</p>"
            )
        note = ""
        if "empty_bins" in top and (top["empty_bins"] > 0).any():
            note = (
                "<p>A bin empty on one side (a range of values that vanished or appeared) counts "
                "with a share of 0.0001 in its place, as evidently and most PSI code do; "
                "<code>psi_populated</code> is the part from bins with rows on both sides "
                "(what toad reports, which drops empty bins).</p>"
            )
        parts.append(h.collapsed(f"The {len(top)} largest feature shifts", note + h.table(top)))
    csi = h.read_csv(RunFiles(inp.run_dir).csv(catalogue.CSI_TRAIN_TEST))
    if csi is not None:
        parts.append(
            "<h3>Characteristic stability (CSI): what moved the score</h3><p>Each feature's mean "
            "contribution to the model's log-odds (tree SHAP) on the test split minus on the "
            "training split, also in score points (negative = riskier). The shifts add up to "
            "the shift of the mean score: a feature with a large PSI and a small CSI moved "
            "without moving the score.</p>"
        )
        parts.append(
            h.table(
                csi.head(10),
                cols=["feature", "shift_points", "share_of_shift"],
                pct=("share_of_shift",),
            )
        )
    parts.append(plots)
    if not any(parts):
        return None
    return h.section("stability", "Population stability (PSI)", "".join(parts))


def _constraints_cost(inp: ReportInputs) -> tuple[Any, Any, Any]:
    """(test AUC with the monotone constraints, without, rows of the refit pair): on a book
    tuned on a sample both AUCs are refits on it, else the model's against one refit (rows
    None)."""
    latest = inp.latest
    pair = latest.get("constraints_pair_rows")
    with_ = latest.get("test_auc_constrained_refit" if pair is not None else "test_auc")
    return with_, latest.get("test_auc_unconstrained"), pair


def _tuning(inp: ReportInputs) -> h.Section:
    m, p = inp.run_metrics, inp.run_params
    best = {
        k.removeprefix("best_"): v
        for k, v in p.items()
        if k.startswith("best_") and k.removeprefix("best_") in SEARCHED
    }
    statuses = pd.Series([t["status"] for t in inp.trials]).value_counts().to_dict()
    n = int(m.get("n_trials", len(inp.trials)))
    rows = [
        (
            "trials",
            f"{n}"
            + (
                f" ({', '.join(f'{v} {k.lower()}' for k, v in statuses.items())}; "
                "failed = pruned or stopped)"
                if statuses
                else ""
            ),
        ),
        ("best validation AUC", h.fmt(m.get("best_valid_auc"))),
        ("best iteration (rounds of the final model)", h.fmt(m.get("best_iteration"), 0)),
        ("tuning time", f"{m['tuning_seconds']:.0f} s" if "tuning_seconds" in m else "-"),
    ]
    constrained = "best_monotone_constraints_method" in p
    rows.append(("monotone constraints applied", "yes" if constrained else "no"))
    if constrained:
        with_, free, pair = _constraints_cost(inp)
        on = f" (refit on {pair:,.0f} rows)" if pair is not None else ""
        rows.append(("test AUC with constraints" + on, h.fmt(with_)))
        rows.append(("test AUC without" + on, h.fmt(free)))
    facts = pd.DataFrame(rows, columns=["", "value"])
    # object dtype: a column of ints and floats would turn 119 into 119.0000
    params = pd.DataFrame(
        [(k, h.number(v)) for k, v in sorted(best.items())],
        columns=["parameter", "best value"],
        dtype=object,
    )
    figs = h.grid(h.figure(b, TUNING_PLOTS[n]) for n, b in inp.tuning_pngs.items())
    body = (
        "<p>Optuna (TPE, median pruning) on the validation AUC; each trial is a nested MLflow "
        "run.</p>" + h.table(facts) + "<h3>Best parameters</h3>" + h.table(params) + figs
    )
    return h.section("tuning", "Tuning", body)


SEARCHED = (
    "num_leaves",
    "max_depth",
    "learning_rate",
    "min_child_samples",
    "lambda_l1",
    "lambda_l2",
    "bagging_fraction",
    "feature_fraction",
)


def _promotion(inp: ReportInputs) -> h.Section:
    d = inp.latest.get("decision")
    if not d:
        return h.section("promotion", "Promotion decision", "<p>No decision recorded.</p>")
    verdict = _verdict(d, "promoted to champion", "NOT promoted (champion kept)")
    rows = pd.DataFrame(
        [
            ("model version", d.get("version")),
            ("decision", verdict + (" (forced by --promote)" if d.get("forced") else "")),
            ("test rows compared on", d.get("rows")),
            ("new model test AUC", h.fmt(d.get("new_auc"))),
            ("champion before", d.get("champion_version") or "none"),
            ("champion AUC on the same rows", h.fmt(d.get("champion_auc"))),
            ("tolerance", d.get("tolerance")),
        ],
        columns=["", "value"],
    )
    body = f'<p class="lead">{h.esc(d.get("reason", ""))}</p>' + h.table(rows)
    checks = d.get("checks") or []
    if checks:
        table = pd.DataFrame(
            [
                (
                    c["name"],
                    "pass" if c["passed"] else "FAIL",
                    "floor" if c["floor"] else "",
                    c["detail"],
                )
                for c in checks
            ],
            columns=["check", "result", "kind", "detail"],
        )
        body += h.table(table)
    return h.section("promotion", "Promotion decision", body)


def _verdict(decision: dict, yes: str, no: str) -> str:
    """The decision in words; "pending" before the run's promotion step has decided."""
    promoted = decision.get("promoted")
    return "pending" if promoted is None else yes if promoted else no


def _effects(inp: ReportInputs) -> h.Section | None:
    if inp.effects_dir is None:
        return None
    fragment = (inp.effects_dir / catalogue.EFFECTS_HTML).read_text()
    when = dt.datetime.fromtimestamp((inp.effects_dir / catalogue.EFFECTS_HTML).stat().st_mtime)
    figs = "".join(
        h.figure((inp.effects_dir / n).read_bytes(), cap)
        for n, cap in EFFECTS_PLOTS.items()
        if (inp.effects_dir / n).exists()
    )
    note = (
        f'<p class="meta">From <code>{h.esc(inp.effects_dir)}</code> (written '
        f"{when:%Y-%m-%d %H:%M}); the study runs in <code>loanrisk run</code> "
        "(<code>effects.enabled</code>) or alone as <code>loanrisk effects</code>, on the "
        "validated tables.</p>"
    )
    title = "Relationship effect study"
    return h.Section(
        EFFECTS_ID,
        title,
        html=f'<div class="effects" id="{EFFECTS_ID}">{note}{fragment}{figs}</div>',
    )


def _footer(inp: ReportInputs) -> str:
    t = inp.run_tags
    versions = ", ".join(
        f"{k.removeprefix('version.')} {v}"
        for k, v in sorted(t.items())
        if k.startswith("version.")
    )
    bits = [f"generated {dt.datetime.now():%Y-%m-%d %H:%M}"]
    if t.get("git_commit"):
        bits.append(f"git {t['git_commit'][:12]}")
    if t.get("data_fingerprint"):
        bits.append(f"data sha256 {t['data_fingerprint'][:12]}")
    if versions:
        bits.append(versions)
    return f"<footer>{h.esc(' · '.join(bits))}</footer>"
