"""The report's validation section: are the PD levels right (calibration tests), how sure is the
test AUC (intervals by customer), and does the model hold up from one snapshot to the next."""

from __future__ import annotations

import pandas as pd

from pipeline.core import catalogue
from pipeline.core.catalogue import RunFiles
from pipeline.reporting import html as h
from pipeline.reporting.inputs import ReportInputs

TEST_COLUMNS = {
    "scope": "scope",
    "group": "group",
    "n": "loans",
    "n_defaults": "observed",
    "expected_defaults": "expected",
    "o_e": "O/E",
    "binomial_p": "binomial p",
    "jeffreys_p": "Jeffreys p",
    "spiegelhalter_p": "Spiegelhalter p",
    "light": "light",
}
CHALLENGER_COLUMNS = {
    "model": "model",
    "auc": "AUC",
    "gini": "Gini",
    "ks": "KS",
    "brier": "Brier",
    "o_e": "O/E",
    "calibration": "calibration",
    "lead": "lead (AUC)",
    "lead_lower": "lead lower",
    "lead_upper": "lead upper",
    "verdict": "verdict",
}
SNAPSHOT_COLUMNS = {
    "snapshot_date": "snapshot",
    "split": "split",
    "n": "rows",
    "default_rate": "default rate",
    "mean_pd": "mean PD",
    "o_e": "O/E",
    "auc": "AUC",
    "ks": "KS",
}
HOW_TO_READ = (
    "<p>O/E is observed over expected defaults (the sum of PDs): above 1 the model "
    "under-predicts. <i>Binomial</i> tests the count of defaults against the PDs (two-sided), "
    "<i>Jeffreys</i> asks whether the PD is too low for the defaults seen (one-sided, as in the "
    "ECB's IRB validation instructions), <i>Spiegelhalter</i> tests every loan's PD, not only the "
    "total. Light: green p &ge; 0.05, amber 0.01 &le; p &lt; 0.05, red p &lt; 0.01 (worst test "
    "of the row). A small group cannot show much: read its light with its number of "
    "defaults.</p>"
)


def section(inp: ReportInputs, plots: str) -> h.Section | None:
    files = RunFiles(inp.run_dir)
    tests = h.read_csv(files.csv(catalogue.CALIBRATION_TESTS))
    by_snapshot = h.read_csv(files.csv(catalogue.BY_SNAPSHOT))
    if tests is None and by_snapshot is None:
        return None
    parts = [
        _intervals(inp),
        _challengers(files),
        _calibration(inp, tests),
        _fairness(inp, files),
        _constraints(files),
    ]
    if by_snapshot is not None:
        parts.append("<h3>Performance per snapshot</h3>")
        parts.append(
            "<p>Each snapshot date on its own: a falling AUC or an O/E drifting away from 1 "
            "shows where the model would need recalibration. The gap between train and "
            "valid is the purge gap: training snapshots whose performance window reaches into "
            "validation are left out.</p>"
        )
        parts.append(plots)
        table = h.table(_renamed(by_snapshot, SNAPSHOT_COLUMNS), pct=("default rate", "mean PD"))
        parts.append(h.collapsed(f"The {len(by_snapshot)} snapshots", table))
    return h.section("validation", "Validation: calibration, uncertainty, time", "".join(parts))


def _intervals(inp: ReportInputs) -> str:
    intervals = inp.metrics.get("intervals") or {}
    if not intervals:
        return ""
    test = inp.metrics.get("test") or {}
    cells = ", ".join(
        f"{h.esc(stat.upper() if stat != 'gini' else 'Gini')} {h.fmt(test.get(stat))} "
        f"[{h.fmt(lo)}, {h.fmt(hi)}]"
        for stat, (lo, hi) in intervals.items()
    )
    level = inp.metrics.get("interval_confidence", 0.95)
    unit = inp.metrics.get("interval_resampled") or "row"
    how = (
        "rows (the table has no customer id)"
        if unit == "row"
        else f"{unit.removesuffix('_id')}s (all of a {unit.removesuffix('_id')}'s rows together)"
    )
    return f"<p>Test split with {level:.0%} intervals from resampling {how}: {cells}.</p>"


def _challengers(files: RunFiles) -> str:
    table = h.read_csv(files.csv(catalogue.CHALLENGERS))
    if table is None:
        return ""
    out = [
        "<h3>Challengers on the same test rows</h3>",
        "<p>A credit team's usual model, a WOE logistic scorecard (monotonic optimal binning, "
        "then logistic regression, then points), and a plain logistic regression, fitted on the "
        "same training split. <i>Lead</i> is this run's AUC minus the challenger's, with its "
        "interval from resampling customers (both models scored on each resample): an interval "
        "holding 0 means the test split cannot tell the two apart.</p>",
        h.table(_renamed(table, CHALLENGER_COLUMNS), lights=("calibration",)),
    ]
    iv = h.read_csv(files.csv(catalogue.SCORECARD_IV))
    if iv is not None and "selected" in iv:
        chosen = iv[iv["selected"].astype(bool)].drop(columns=["selected"])
        out.append(
            f"<p>The scorecard's {len(chosen)} characteristics (strongest information value "
            "first; a characteristic whose weights of evidence correlate above 0.7 with a "
            "stronger one is left out). Its points per bin are in "
            f"<code>{h.esc(files.csv(catalogue.SCORECARD_POINTS).name)}</code>.</p>"
        )
        iv_table = h.table(chosen.rename(columns={"iv": "IV", "n_bins": "bins"}))
        out.append(h.collapsed(f"The scorecard's {len(chosen)} characteristics", iv_table))
    return "".join(out)


def _calibration(inp: ReportInputs, tests: pd.DataFrame | None) -> str:
    cal = inp.metrics.get("calibration") or {}
    if tests is None or not cal:
        return ""
    hl = (
        f"Hosmer-Lemeshow on PD deciles: statistic {h.fmt(cal.get('hosmer_lemeshow'), 2)}, "
        f"{cal.get('hl_dof')} degrees of freedom, p {h.fmt(cal.get('hl_pvalue'))}."
    )
    head = (
        f"<p>Test split: <b>{cal.get('n_defaults')}</b> defaults observed against "
        f"<b>{h.fmt(cal.get('expected_defaults'), 1)}</b> expected, O/E "
        f"<b>{h.fmt(cal.get('o_e'), 3)}</b>: <b>{h.esc(cal.get('light'))}</b>. {hl}</p>"
    )
    table = h.table(_renamed(tests, TEST_COLUMNS), lights=("light",))
    return (
        "<h3>Calibration tests</h3>"
        + head
        + HOW_TO_READ
        + h.collapsed(f"The calibration tests of {len(tests)} groups", table)
    )


def _refit_rows(cost: dict) -> str:
    rows = cost.get("train_rows")
    return f"; both on {rows:,.0f} training rows of whole customers" if rows else ""


def _fairness(inp: ReportInputs, files: RunFiles) -> str:
    table = h.read_csv(files.csv(catalogue.FAIRNESS))
    if table is None or table.empty:
        return (
            "<h3>Fairness</h3><p>No protected attribute (<code>fairness.protected</code>) in "
            "this data: no fairness audit.</p>"
        )
    cost = inp.metrics.get("protected_auc") or {}
    note = ""
    if cost:
        note = (
            f"<p>Leaving the protected attributes out of the model costs "
            f"<b>{h.fmt(cost['with'] - cost['without'])}</b> test AUC (a refit of this run's "
            f"configuration with them: {h.fmt(cost['with'])}, without: "
            f"{h.fmt(cost['without'])}{_refit_rows(cost)}).</p>"
        )
    return (
        "<h3>Fairness by protected group (test split)</h3>"
        "<p>Protected attributes are audited, not used: they are not model features (unless "
        "<code>fairness.use_as_features</code>) and never reason codes. Per group: default "
        "rate, mean PD, O/E and its calibration light, AUC inside the group, and the share not "
        "flagged for early warning with its ratio to the best group (the four-fifths rule flags "
        "a ratio below 0.8).</p>"
        + note
        + h.collapsed(
            f"The {len(table)} protected groups",
            h.table(
                table, pct=("default_rate", "mean_pd", "favourable_rate"), lights=("calibration",)
            ),
        )
    )


def _constraints(files: RunFiles) -> str:
    table = h.read_csv(files.csv(catalogue.CONSTRAINTS_CHECK))
    if table is None or table.empty:
        return ""
    bad = table[table["verdict"] == "contradicts"]["feature"].tolist()
    summary = (
        f"<p><b>{len(bad)} of {len(table)}</b> constraints contradict the training data's own "
        f"trend: {h.esc(', '.join(bad))}. The constraint then forces the model against what the "
        "data shows, which usually deletes the feature; set its direction to <code>none</code> "
        "(or another) with a reason under <code>train.expected</code>.</p>"
        if bad
        else f"<p>None of the {len(table)} constraints contradicts the training data.</p>"
    )
    return (
        "<h3>Monotone constraints against the data</h3>"
        "<p>Each constrained feature's direction (the PD as the feature grows) against its trend "
        "on the training rows: Kendall's tau with the default flag, significant at p &lt; 0.01, "
        "and the default rate of its lowest and highest fifth. Under a constraint the model's "
        "SHAP direction is imposed, so it is no evidence for the expectation; this table "
        "is.</p>"
        + summary
        + h.collapsed(
            f"The {len(table)} constrained features",
            h.table(
                table,
                pct=("rate_lowest_quintile", "rate_highest_quintile"),
                lights=("light",),
            ),
        )
    )


def _renamed(frame: pd.DataFrame, columns: dict[str, str]) -> pd.DataFrame:
    return frame[[c for c in columns if c in frame.columns]].rename(columns=columns)
