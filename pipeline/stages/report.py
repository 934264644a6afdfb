"""Report: one self-contained HTML page per training run, `reports/<run_id>/report.html`.

Built from what the train, evaluate and explain stages left in the run folder (metrics.json,
the CSV tables, every PNG), the run's params and metrics in MLflow (tuning summary, tuning
plots), `reports/latest_run.json` (the promotion decision) and, when it exists, the effect
study's section `reports/effects/effects.html`. Images are embedded as base64 PNG and there is
no external asset, so the file can be mailed. Aggregates and ids only: tables are rendered from
aggregate CSVs, and columns named like personal data are dropped defensively.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import json
import logging
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd

from pipeline.config import Config
from pipeline.core import catalogue
from pipeline.core.catalogue import RunFiles
from pipeline.core.io import write_text
from pipeline.runs.context import RunContext

log = logging.getLogger(__name__)
# Never rendered, whatever table they turn up in: the customer table's personal fields.
PERSONAL_COLUMNS = frozenset(
    {
        "birth_year",
        "annual_income",
        "name",
        "first_name",
        "last_name",
        "email",
        "phone",
        "address",
        "date_of_birth",
        "gender",
        "sex",
        "personal_status_and_sex",
    }
)
SPLITS = ("train", "valid", "test")
CAVEAT = (
    "SHAP values show what the model uses, not what causes default. Lenders contact risky "
    "customers more (reminders, hardship calls, collections), so a contact feature can raise "
    "the predicted PD even when the contact itself helps. Whether a lever reduces default is a "
    "causal question: see the relationship effect study"
)
# Captions of the known plots, and the section each one belongs to; any other PNG in the run
# folder goes to "More plots" with a caption made from its file name.
PLOTS: dict[str, tuple[str, str]] = {
    catalogue.SHAP_FAMILY_PNG: (
        "explain",
        "Share of the model's attribution (mean |SHAP|) by family.",
    ),
    catalogue.SHAP_TOP_PNG: (
        "explain",
        "Features the model uses most (mean |SHAP|, log-odds); green: more of it lowers the PD, "
        "red: raises it.",
    ),
    catalogue.ROC_PNG: ("performance", "ROC curve per split (calibrated PD)."),
    catalogue.KS_PNG: (
        "performance",
        "KS on the test split: cumulative shares of defaults and non-defaults by PD; the widest "
        "gap is the KS, at its cut-off.",
    ),
    catalogue.CALIBRATION_PNG: (
        "performance",
        "Reliability: mean predicted PD against the observed default rate per PD bin.",
    ),
    catalogue.SCORE_DISTRIBUTION_PNG: (
        "performance",
        "Score (points) by outcome on the test split.",
    ),
    catalogue.GAINS_PNG: (
        "gains",
        "Cumulative capture of defaults and lift by PD decile, test split.",
    ),
    catalogue.PSI_PNG: ("stability", "Population stability index of each feature, train vs test."),
}
TUNING_PLOTS = {
    catalogue.TUNING_HISTORY_PNG: "Optuna optimisation history: validation AUC per trial.",
    catalogue.TUNING_IMPORTANCES_PNG: "Optuna parameter importances for validation AUC.",
}
EFFECTS_PLOTS = {
    catalogue.FOREST_PNG: (
        "Effect of each relationship lever on PD (doubly robust, 95% CI) vs naive."
    ),
    catalogue.OVERLAP_PNG: "Propensity overlap by arm for each lever.",
}


@dataclass
class ReportInputs:
    """Everything the page shows, gathered once (no MLflow calls while rendering)."""

    run_id: str
    run_dir: Path
    latest: dict[str, Any]
    metrics: dict[str, Any]
    run_metrics: dict[str, float] = field(default_factory=dict)
    run_params: dict[str, str] = field(default_factory=dict)
    run_tags: dict[str, str] = field(default_factory=dict)
    trials: list[dict[str, Any]] = field(default_factory=list)
    tuning_pngs: dict[str, bytes] = field(default_factory=dict)
    data_kind: str = "tables"
    data_source: str = ""
    effects_dir: Path | None = None


def run(cfg: Config, run: RunContext) -> str:
    """Write the report of training run `run` and log it to that run."""
    inputs = gather(cfg, run)
    path = write(inputs)
    run.log_artifact(path, catalogue.ARTEFACT_REPORT)
    size_kb = path.stat().st_size / 1024
    log.info("report %s (%.0f KB)", path, size_kb)
    return f"report: {path} ({size_kb:.0f} KB)"


def gather(cfg: Config, run: RunContext) -> ReportInputs:
    latest = run.train_result()
    run_id = run.run_id
    run_dir = run.run_dir
    metrics_path = run.files.metrics
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else {}
    if not metrics:
        log.warning("no %s: run `loanrisk evaluate` for the metrics tables", metrics_path)
    src = cfg.data.path if cfg.data.kind == "table" else cfg.data.raw_dir
    inputs = ReportInputs(
        run_id=run_id,
        run_dir=run_dir,
        latest=latest,
        metrics=metrics,
        data_kind=cfg.data.kind,
        data_source=str(src),
    )
    effects = catalogue.effects_dir(cfg.output.reports_dir)
    if (effects / catalogue.EFFECTS_HTML).exists():
        inputs.effects_dir = effects
    client = run.client
    r = client.get_run(run_id)
    inputs.run_metrics = dict(r.data.metrics)
    inputs.run_params = dict(r.data.params)
    inputs.run_tags = dict(r.data.tags)
    children = client.search_runs(
        [r.info.experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{run_id}'",
        max_results=5000,
    )
    inputs.trials = [
        {
            "name": c.data.tags.get("mlflow.runName", c.info.run_id),
            "status": c.info.status,
            "valid_auc": c.data.metrics.get("valid_auc"),
        }
        for c in children
    ]
    with tempfile.TemporaryDirectory() as tmp:
        try:
            local = Path(
                mlflow.artifacts.download_artifacts(
                    run_id=run_id,
                    dst_path=tmp,
                    artifact_path=catalogue.ARTEFACT_TUNING,
                    tracking_uri=cfg.mlflow.tracking_uri,
                )
            )
        except Exception as exc:  # the tuning plots are optional: a run may have none
            log.debug("no tuning plots for run %s: %s", run_id, exc)
        else:
            for name in TUNING_PLOTS:
                if (local / name).exists():
                    inputs.tuning_pngs[name] = (local / name).read_bytes()
    return inputs


def write(inputs: ReportInputs) -> Path:
    path = write_text(render(inputs), RunFiles(inputs.run_dir).report)
    path.chmod(0o644)  # meant to be shared; the atomic temporary file is created 0600
    return path


# -- rendering -----------------------------------------------------------------------------------
def render(inp: ReportInputs) -> str:
    pngs = [p.name for p in RunFiles(inp.run_dir).pngs()]
    used: set[str] = set()

    def plots_for(section: str) -> str:
        names = [n for n in pngs if PLOTS.get(n, ("more",))[0] == section]
        used.update(names)
        return "".join(_figure((inp.run_dir / n).read_bytes(), PLOTS[n][1]) for n in names)

    body = [
        _header(inp),
        _answer(inp, plots_for("explain")),
        _data_summary(inp),
        _performance(inp, plots_for("performance")),
        _gains(inp, plots_for("gains")),
        _segments(inp),
        _stability(inp, plots_for("stability")),
        _tuning(inp),
        _promotion(inp),
    ]
    rest = [n for n in pngs if n not in used]
    if rest:
        body.append(
            _section(
                "more-plots",
                "More plots",
                "".join(_figure((inp.run_dir / n).read_bytes(), _caption(n)) for n in rest),
            )
        )
    body.append(_effects(inp))
    body.append(_footer(inp))
    title = f"loanrisk run {inp.run_id}"
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(title)}</title><style>{CSS}</style></head><body>\n"
        + "\n".join(b for b in body if b)
        + "\n</body></html>\n"
    )


def _header(inp: ReportInputs) -> str:
    test = inp.metrics.get("test") or {}
    d = inp.latest.get("decision") or {}
    kind = inp.metrics.get("split_kind") or inp.run_tags.get("split_kind", "?")
    facts = [
        ("test AUC", _f(test.get("auc", inp.latest.get("test_auc")))),
        ("Gini", _f(test.get("gini"))),
        ("KS", _f(test.get("ks"))),
        ("split", "out of time" if kind == "out_of_time" else f"{kind} (not out of time)"),
        ("model version", str(inp.latest.get("model_version") or "-")),
        ("champion", "promoted" if d.get("promoted") else "not promoted"),
    ]
    boxes = "".join(
        f'<div class="kpi"><div class="v">{_e(v)}</div><div class="k">{_e(k)}</div></div>'
        for k, v in facts
    )
    return (
        f'<header><h1>Loan-default model: run report</h1><p class="meta">run '
        f"<code>{_e(inp.run_id)}</code> &middot; model <code>{_e(inp.latest.get('model_uri', ''))}"
        f"</code> &middot; data {_e(inp.data_kind)}: <code>{_e(inp.data_source)}</code>"
        f'</p><div class="kpis">{boxes}</div></header>'
    )


def _answer(inp: ReportInputs, plots: str) -> str:
    """The business question first: which relationship factors go with lower default."""
    rel = _csv(RunFiles(inp.run_dir).csv(catalogue.RELATIONSHIP_FACTORS))
    imp = _csv(RunFiles(inp.run_dir).csv(catalogue.SHAP_IMPORTANCE))
    fam = _csv(RunFiles(inp.run_dir).csv(catalogue.SHAP_BY_FAMILY))
    truth = _csv(RunFiles(inp.run_dir).csv(catalogue.TRUTH_RECOVERY))
    title = "Which relationship factors reduce default?"
    if imp is None and rel is None:
        return _section(
            "answer",
            title,
            f"<p>No SHAP tables in <code>{_e(inp.run_dir)}</code>: run <code>loanrisk explain"
            "</code>.</p>",
        )
    parts = []
    if rel is not None and len(rel):
        lowers = rel[rel["direction"] == "lowers"].sort_values("rank")
        raises = rel[rel["direction"] == "raises"].sort_values("rank")
        if len(lowers):
            items = "".join(
                f"<li><b>{_e(r.description)}</b> (<code>{_e(r.feature)}</code>): "
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
            names = ", ".join(_e(r.description) for r in raises.head(5).itertuples())
            parts.append(f"<p>Relationship factors that go with a <b>higher</b> PD: {names}.</p>")
    else:
        parts.append(
            '<p class="lead">This data has no relationship (CRM) features, so it cannot answer '
            "the question; below are the features the model uses most.</p>"
        )
    parts.append(
        f'<p class="caveat"><b>Read with care.</b> {_e(CAVEAT)}'
        f"{' (below)' if inp.effects_dir else ''}.</p>"
    )
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
        parts.append(_table(fam, pct=("share",)))
    if rel is not None and len(rel):
        parts.append("<h3>Relationship factors, ranked by mean |SHAP|</h3>")
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
        parts.append(_table(rel.head(20), cols=cols, pct=("share", "stable_share")))
        if "stable_share" in rel.columns:
            parts.append(
                "<p><i>stable_share</i>: the share of refits of this model on customers drawn "
                "with replacement that give the factor the same direction. Below 100%, the "
                "direction is one model's choice more than the data's.</p>"
            )
        if "constrained" in rel.columns and _true(rel["constrained"]).any():
            parts.append(
                "<p>A <i>constrained</i> factor was trained monotone in its expected direction "
                "(train.monotone_constraints): its direction is imposed, not found; the model "
                "can only use it that way or not at all.</p>"
            )
    elif imp is not None:
        parts.append("<h3>Top features, ranked by mean |SHAP|</h3>")
        cols = ["rank", "feature", "family", "share", "direction"]
        parts.append(_table(imp.head(15), cols=cols, pct=("share",)))
    if truth is not None and len(truth):
        parts.append("<h3>Planted effects vs what the model found (simulated book)</h3>")
        parts.append(f"<p>{_e(TRUTH_NOTE)}</p>")
        truth = _with_effect_study(truth, inp.effects_dir)
        cols = [c for c in TRUTH_COLUMNS if c in truth.columns]
        parts.append(_table(truth, cols=cols))
    parts.append(plots)
    return _section("answer", title, "".join(parts))


TRUTH_COLUMNS = [
    "effect",
    "kind",
    "feature",
    "planted_direction",
    "planted_attribution",
    "confounding",
    "found_direction",
    "mean_abs_shap",
    "rank",
    "verdict",
    "effect_study",
]
TRUTH_NOTE = (
    "planted_attribution is the effect's mean |SHAP| in the oracle (log-odds), mean_abs_shap "
    "what the model gives the effect's features. An effect is checked when it is large enough "
    "to show and who gets it does not bias it against its direction; the effects the lender "
    "targets at risky customers are for the effect study. The planted null must rank below "
    "every checked effect. effect_study: the effect study's estimate for the lever, in PD "
    "points, where it has run."
)


def _with_effect_study(truth: pd.DataFrame, effects_dir: Path | None) -> pd.DataFrame:
    """The truth table with the effect study's estimate of each lever (pp of 12-month PD, 95%
    CI, and the truth when the study had it), where the study has run."""
    table = _csv(effects_dir / catalogue.EFFECTS_CSV) if effects_dir is not None else None
    if table is None or "lever" not in truth.columns:
        return truth
    by_lever = table.set_index("lever")

    def cell(lever: object) -> str:
        if not isinstance(lever, str) or lever not in by_lever.index:
            return ""
        r = by_lever.loc[lever]
        text = f"{r['ate_pp']:+.2f} pp [{r['ci_low_pp']:+.2f}, {r['ci_high_pp']:+.2f}]"
        if "true_effect_pp" in r and pd.notna(r["true_effect_pp"]):
            text += f", truth {r['true_effect_pp']:+.2f}"
        return text

    return truth.assign(effect_study=truth["lever"].map(cell))


def _true(col: pd.Series) -> pd.Series:
    """A CSV-read boolean column as booleans (missing = False)."""
    return col.astype(str).str.lower().eq("true")


def _agreement(r: Any) -> str:
    agrees = str(getattr(r, "agrees", "")).lower()
    if agrees == "true":
        return "; as the business expects"
    if agrees == "false":
        return f"; <i>the business expects it to {_e(r.expected)} PD</i>"
    return ""


def _data_summary(inp: ReportInputs) -> str:
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
        )
    nf = inp.run_tags.get("n_features", "?")
    intro = (
        f"<p>{int(total):,} labelled rows, {_e(nf)} features; data: {_e(inp.data_kind)} "
        f"(<code>{_e(inp.data_source)}</code>).</p>"
    )
    return _section("data", "Data", intro + how + _table(df, pct=("default rate",)))


def _performance(inp: ReportInputs, plots: str) -> str:
    splits = inp.metrics.get("splits") or {}
    if not splits:
        return _section(
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
    table = _table(pd.DataFrame(rows), pct=("default rate", "mean PD"))
    cal = inp.latest.get("calibration", "?")
    briers = {
        k.removeprefix("calibration_brier_"): v
        for k, v in inp.run_metrics.items()
        if k.startswith("calibration_brier_")
    }
    extra = [f"Calibration: <b>{_e(cal)}</b>, chosen by Brier on the validation split"]
    if briers:
        extra[0] += " (" + ", ".join(f"{_e(k)} {v:.4f}" for k, v in sorted(briers.items())) + ")"
    for key, label in (
        ("oracle_auc", "Oracle AUC (the simulator's true PD on the test rows: the best possible)"),
        ("baseline_auc", "Logistic-regression baseline AUC on the same features"),
    ):
        if inp.metrics.get(key) is not None:
            extra.append(f"{label}: <b>{_f(inp.metrics[key])}</b>")
    free = inp.latest.get("test_auc_unconstrained")
    if free is not None:
        extra.append(
            f"Test AUC with monotone constraints {_f(inp.latest.get('test_auc'))} vs without "
            f"{_f(free)} (uncalibrated refit with the same parameters)"
        )
    notes = "<ul>" + "".join(f"<li>{x}</li>" for x in extra) + "</ul>"
    intro = (
        "<p>Metrics of the calibrated PD per split; <i>raw</i> columns are the booster's "
        "uncalibrated output.</p>"
    )
    return _section("performance", "Model performance", intro + table + notes + plots)


def _gains(inp: ReportInputs, plots: str) -> str:
    g = _csv(RunFiles(inp.run_dir).csv(catalogue.GAINS_TEST))
    cal = _csv(RunFiles(inp.run_dir).csv(catalogue.CALIBRATION_TEST))
    if g is None and not plots:
        return ""
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
        parts.append(_table(g, cols=cols, pct=("default_rate", "cum_capture")))
    if cal is not None:
        parts.append("<h3>Calibration by PD bin (test)</h3>")
        cols = ["bin", "n", "n_defaults", "mean_pd", "observed_rate", "observed_lo", "observed_hi"]
        parts.append(
            _table(cal, cols=cols, pct=("mean_pd", "observed_rate", "observed_lo", "observed_hi"))
        )
    parts.append(plots)
    return _section("gains", "Gains, lift and calibration", "".join(parts))


def _segments(inp: ReportInputs) -> str:
    s = _csv(RunFiles(inp.run_dir).csv(catalogue.SEGMENTS_TEST))
    if s is None or not len(s):
        return _section(
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
        parts.append(f"<h3>By {_e(col)}</h3>")
        parts.append(_table(sub, cols=cols, pct=("share", "default_rate", "mean_pd")))
    return _section("segments", "Segments (test split)", "".join(parts))


def _stability(inp: ReportInputs, plots: str) -> str:
    psi = _csv(RunFiles(inp.run_dir).csv(catalogue.PSI_TRAIN_TEST))
    score_psi = inp.metrics.get("score_psi_train_test")
    parts = []
    if score_psi is not None:
        parts.append(
            f"<p>PSI of the score, train vs test: <b>{_f(score_psi)}</b> "
            "(below 0.1 stable, 0.1-0.25 watch, above 0.25 shifted).</p>"
        )
    if psi is not None:
        top = psi.sort_values("psi", ascending=False).head(15)
        counts = psi["status"].value_counts().to_dict() if "status" in psi else {}
        if counts:
            parts.append(
                "<p>Features by PSI status: "
                + ", ".join(f"{_e(k)} {v}" for k, v in sorted(counts.items()))
                + ".</p>"
            )
        parts.append("<h3>Largest feature shifts</h3>")
        parts.append(_table(top))
    parts.append(plots)
    if not any(parts):
        return ""
    return _section("stability", "Population stability (PSI)", "".join(parts))


def _tuning(inp: ReportInputs) -> str:
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
        ("best validation AUC", _f(m.get("best_valid_auc"))),
        ("best iteration (rounds of the final model)", _f(m.get("best_iteration"), 0)),
        ("tuning time", f"{m['tuning_seconds']:.0f} s" if "tuning_seconds" in m else "-"),
    ]
    constrained = "best_monotone_constraints_method" in p
    rows.append(("monotone constraints applied", "yes" if constrained else "no"))
    if constrained:
        rows.append(("test AUC with constraints", _f(inp.latest.get("test_auc"))))
        rows.append(("test AUC without", _f(inp.latest.get("test_auc_unconstrained"))))
    facts = pd.DataFrame(rows, columns=["", "value"])
    params = pd.DataFrame(
        [(k, _number(v)) for k, v in sorted(best.items())], columns=["parameter", "best value"]
    )
    figs = "".join(_figure(b, TUNING_PLOTS[n]) for n, b in inp.tuning_pngs.items())
    body = (
        "<p>Optuna (TPE, median pruning) on the validation AUC; each trial is a nested MLflow "
        "run.</p>" + _table(facts) + "<h3>Best parameters</h3>" + _table(params) + figs
    )
    return _section("tuning", "Tuning", body)


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


def _promotion(inp: ReportInputs) -> str:
    d = inp.latest.get("decision")
    if not d:
        return _section("promotion", "Promotion decision", "<p>No decision recorded.</p>")
    verdict = "promoted to champion" if d.get("promoted") else "NOT promoted (champion kept)"
    rows = pd.DataFrame(
        [
            ("model version", d.get("version")),
            ("decision", verdict),
            ("new model test AUC", _f(d.get("new_auc"))),
            ("champion before", d.get("champion_version") or "none"),
            ("champion AUC", _f(d.get("champion_auc"))),
            ("tolerance", d.get("tolerance")),
        ],
        columns=["", "value"],
    )
    body = f'<p class="lead">{_e(d.get("reason", ""))}</p>' + _table(rows)
    return _section("promotion", "Promotion decision", body)


def _effects(inp: ReportInputs) -> str:
    if inp.effects_dir is None:
        return ""
    fragment = (inp.effects_dir / catalogue.EFFECTS_HTML).read_text()
    when = dt.datetime.fromtimestamp((inp.effects_dir / catalogue.EFFECTS_HTML).stat().st_mtime)
    figs = "".join(
        _figure((inp.effects_dir / n).read_bytes(), cap)
        for n, cap in EFFECTS_PLOTS.items()
        if (inp.effects_dir / n).exists()
    )
    note = (
        f'<p class="meta">From <code>{_e(inp.effects_dir)}</code> (written '
        f"{when:%Y-%m-%d %H:%M}); the study is run by <code>loanrisk effects</code> on the "
        "validated tables, not by this training run.</p>"
    )
    return f'<div class="effects">{note}{fragment}{figs}</div>'


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
    return f"<footer>{_e(' · '.join(bits))}</footer>"


# -- helpers -------------------------------------------------------------------------------------
def _section(anchor: str, title: str, body: str) -> str:
    return f'<section id="{anchor}"><h2>{_e(title)}</h2>{body}</section>'


def _figure(png: bytes, caption: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (
        f'<figure><img alt="{_e(caption)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{_e(caption)}</figcaption></figure>"
    )


def _caption(name: str) -> str:
    return Path(name).stem.replace("_", " ").capitalize() + "."


def _csv(path: Path) -> pd.DataFrame | None:
    if not path.exists():
        return None
    return pd.read_csv(path)


def _table(df: pd.DataFrame, cols: Iterable[str] | None = None, pct: Iterable[str] = ()) -> str:
    """An HTML table of an aggregate frame; every cell escaped; personal columns dropped."""
    if cols is not None:
        df = df[[c for c in cols if c in df.columns]]
    df = df[[c for c in df.columns if str(c).lower() not in PERSONAL_COLUMNS]]
    pct = set(pct)
    head = "".join(f"<th>{_e(c)}</th>" for c in df.columns)
    body = []
    for row in df.itertuples(index=False):
        cells = []
        for c, v in zip(df.columns, row, strict=True):
            text = _pct(v) if c in pct else _cell(v)
            cls = ' class="n"' if _is_number(v) else ""
            cells.append(f"<td{cls}>{_e(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _cell(v: Any) -> str:
    if v is None or (isinstance(v, float) and v != v):
        return ""
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        return f"{v:.4f}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"
    return str(v)


def _number(text: str) -> Any:
    """An MLflow param (always a string) as the number it holds, when it holds one."""
    for kind in (int, float):
        try:
            return kind(text)
        except (TypeError, ValueError):
            continue
    return text


def _pct(v: Any) -> str:
    if v is None or not _is_number(v) or v != v:
        return _cell(v)
    return f"{v:.2%}"


def _f(v: Any, digits: int = 4) -> str:
    if v is None:
        return "-"
    try:
        x = float(v)
    except (TypeError, ValueError):
        return str(v)
    return "-" if x != x else f"{x:.{digits}f}"


def _e(v: Any) -> str:
    return html.escape(str(v), quote=True)


CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1100px;
margin:24px auto;
padding:0 16px;color:#222;line-height:1.45}
h1{font-size:1.6em;margin-bottom:4px}h2{border-bottom:2px solid #4477aa;padding-bottom:3px;
margin-top:36px}h3{margin-top:20px;font-size:1.05em}
.meta{color:#666;font-size:.9em}code{background:#f3f3f3;padding:0 3px;border-radius:3px}
.kpis{display:flex;flex-wrap:wrap;gap:10px;margin:14px 0}.kpi{border:1px solid #ddd;
border-radius:6px;padding:8px 14px;min-width:110px}.kpi .v{font-size:1.3em;font-weight:600}
.kpi .k{color:#666;font-size:.85em}.lead{font-size:1.08em}
.caveat{background:#fff7e0;border-left:4px solid #e0a800;padding:8px 12px}
.warn{background:#fdecea;border-left:4px solid #cc3311;padding:8px 12px}
table{border-collapse:collapse;margin:8px 0 14px;font-size:.85em}
th,td{border:1px solid #ddd;padding:3px 8px;text-align:left}th{background:#f0f4f8}
td.n{text-align:right;font-variant-numeric:tabular-nums}
figure{margin:14px 0}figure img{max-width:min(100%,760px);border:1px solid #eee}
figcaption{color:#555;font-size:.88em}footer{margin-top:40px;color:#888;font-size:.8em}
"""
