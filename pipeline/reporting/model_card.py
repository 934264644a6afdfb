"""The model card: one Markdown page per registered model version, for the model validator.

What the model is for, how default is defined, which data and split it learnt from, how well it
ranks (with intervals), whether its PD levels pass the calibration tests, how it compares with
the scorecard and baseline challengers, fairness, its monotone constraints and their rationale,
its known limitations and whether it was approved (promoted). Written into the run's folder and
set as the MLflow model version's description, so the registry shows it beside the model.
Aggregates only, like the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from pipeline.core import catalogue
from pipeline.core.catalogue import RunFiles
from pipeline.reporting import html as h
from pipeline.reporting.inputs import ReportInputs


@dataclass(frozen=True)
class Definition:
    """How the label and the data window were made (from the run's configuration)."""

    default_dpd: int
    window_months: int
    min_history_months: int
    gap_months: int | None
    registered_model: str
    # feature, expected direction ("lowers"/"raises" the PD), what it measures
    constraints: list[tuple[str, str, str]] = field(default_factory=list)


def render_card(inp: ReportInputs, d: Definition) -> str:
    files = RunFiles(inp.run_dir)
    version = inp.latest.get("model_version")
    decision = inp.latest.get("decision") or {}
    title = f"{d.registered_model} v{version}" if version else f"run {inp.run_id}"
    lines = [
        f"# Model card: {title}",
        "",
        f"- Run: `{inp.run_id}`; model `{inp.latest.get('model_uri', '')}`",
        f"- Approval: {'**champion** (promoted)' if decision.get('promoted') else 'not promoted'}"
        f" - {decision.get('reason', 'no promotion decision recorded')}",
        "",
        "## Intended use",
        "Behavioural PD of a loan already on book, as of a snapshot date: portfolio monitoring, "
        "early warning, provisioning inputs after recalibration. Not for application scoring "
        "(it needs repayment and CRM history) and not a causal estimate of what a relationship "
        "lever does (see the effect study).",
        "",
        "## Default definition",
        f"{d.default_dpd}+ days past due on any instalment within {d.window_months} months after "
        "the snapshot date. No materiality threshold: any amount past due counts.",
        "",
        "## Data and split",
        *_data(inp, d),
        "",
        "## Performance (test split)",
        *_performance(inp),
        "",
        "## Calibration",
        *_calibration(inp),
        "",
        "## Stability (train vs test)",
        *_stability(inp, files),
        "",
        "## Challengers",
        *_table(files.csv(catalogue.CHALLENGERS), ["model", "auc", "ks", "o_e", "verdict"]),
        "",
        "## Fairness",
        *_fairness(files),
        "",
        "## Monotone constraints",
        *_constraints(d),
        "",
        "## Known limitations",
        "- Relationship features are observational: lenders contact risky customers more, so "
        "their attributions are associations, not effects.",
        "- Calibration is fitted on the validation split; a PD level moves with the credit "
        "cycle (see the per-snapshot O/E in the report) and needs monitoring.",
        "- Groups with few defaults cannot show mis-calibration: read each light with its counts.",
        "",
    ]
    return "\n".join(lines)


def _data(inp: ReportInputs, d: Definition) -> list[str]:
    dates = inp.metrics.get("split_dates") or {}
    splits = inp.metrics.get("splits") or {}
    kind = inp.metrics.get("split_kind", "?")
    out = [
        f"Source: {inp.data_kind} `{inp.data_source}`. Split: {kind.replace('_', ' ')}."
        + (
            f" Snapshots need {d.min_history_months} months of history; training snapshots "
            f"whose {d.window_months}-month window reaches into validation are purged "
            f"(gap {d.gap_months if d.gap_months is not None else d.window_months} months)."
            if kind == "out_of_time"
            else ""
        ),
        "",
        "| split | rows | defaults | default rate | snapshots |",
        "| --- | --- | --- | --- | --- |",
    ]
    for k in ("train", "valid", "test"):
        s, ds = splits.get(k) or {}, dates.get(k) or []
        span = f"{ds[0]} .. {ds[-1]} ({len(ds)})" if ds else ""
        out.append(
            f"| {k} | {s.get('n', '')} | {s.get('n_defaults', '')} | "
            f"{h.percent(s.get('default_rate'))} | {span} |"
        )
    return out


def _performance(inp: ReportInputs) -> list[str]:
    test = inp.metrics.get("test") or {}
    intervals = inp.metrics.get("intervals") or {}
    out = []
    for key, name in (("auc", "AUC"), ("gini", "Gini"), ("ks", "KS")):
        lo_hi = intervals.get(key)
        ci = f" [{h.fmt(lo_hi[0])}, {h.fmt(lo_hi[1])}]" if lo_hi else ""
        out.append(f"- {name} {h.fmt(test.get(key))}{ci}")
    out.append(f"- Brier {h.fmt(test.get('brier'))}")
    if inp.metrics.get("oracle_auc") is not None:
        out.append(f"- Oracle AUC (simulated book's true PD) {h.fmt(inp.metrics['oracle_auc'])}")
    return out


def _stability(inp: ReportInputs, files: RunFiles) -> list[str]:
    out = [f"- PSI of the score {h.fmt(inp.metrics.get('score_psi_train_test'))}"]
    psi = h.read_csv(files.csv(catalogue.PSI_TRAIN_TEST))
    if psi is not None and "status" in psi:
        shifted = psi.loc[psi["status"] == "alert", "feature"].tolist()
        out.append(
            f"- Features shifted (PSI > 0.25): {len(shifted)} of {len(psi)}"
            + (
                f" ({', '.join(shifted[:8])}{', ...' if len(shifted) > 8 else ''})"
                if shifted
                else ""
            )
        )
    out.append("- Largest score shifts by feature (CSI, points; negative = riskier):")
    out += _table(files.csv(catalogue.CSI_TRAIN_TEST), ["feature", "shift_points"], rows=5)
    return out


def _calibration(inp: ReportInputs) -> list[str]:
    c = inp.metrics.get("calibration") or {}
    if not c:
        return ["Not evaluated."]
    return [
        f"- Observed {c.get('n_defaults')} vs expected {h.fmt(c.get('expected_defaults'), 1)} "
        f"defaults, O/E {h.fmt(c.get('o_e'), 3)}: **{c.get('light')}**",
        f"- Binomial p {h.fmt(c.get('binomial_p'))}, Jeffreys p {h.fmt(c.get('jeffreys_p'))}, "
        f"Spiegelhalter p {h.fmt(c.get('spiegelhalter_p'))}, Hosmer-Lemeshow p "
        f"{h.fmt(c.get('hl_pvalue'))}",
        "- Per tier and segment: `calibration_tests_test.csv` and the report.",
    ]


def _fairness(files: RunFiles) -> list[str]:
    rows = _table(files.csv(catalogue.FAIRNESS), None)
    return (
        rows
        if rows != ["Not available for this run."]
        else ["No fairness table for this run (no sensitive attribute was found in the data)."]
    )


def _constraints(d: Definition) -> list[str]:
    if not d.constraints:
        return ["None: the model may learn any direction."]
    out = ["| feature | PD when it grows | what it measures |", "| --- | --- | --- |"]
    out += [
        f"| {n} | {'falls' if e == 'lowers' else 'rises'} | {what} |"
        for n, e, what in d.constraints
    ]
    return out


def _table(path, columns: list[str] | None, rows: int | None = None) -> list[str]:
    frame = h.read_csv(path)
    if frame is None or frame.empty:
        return ["Not available for this run."]
    if rows is not None:
        frame = frame.head(rows)
    if columns:
        frame = frame[[c for c in columns if c in frame.columns]]
    frame = frame[[c for c in frame.columns if str(c).lower() not in h.PERSONAL_COLUMNS]]
    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    out = [head, "|" + " --- |" * len(frame.columns)]
    for row in frame.itertuples(index=False):
        out.append("| " + " | ".join(h.cell(v) if not pd.isna(v) else "" for v in row) + " |")
    return out
