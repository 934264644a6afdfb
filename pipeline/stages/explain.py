"""Explain stage: which features, and which relationship factors, the model uses to lower or
raise PD, written into the run's folder and logged to its MLflow run.

Exact tree SHAP values (LightGBM's `pred_contrib`, the same numbers `shap.TreeExplainer` gives
for a LightGBM model, in log-odds) on the test split (at most `explain.max_rows` rows of it),
summarised by `pipeline.riskmath.attribution`; on the simulated book, checked against the
planted effects (`pipeline.simulator.known_truth`). Files (names in `pipeline.core.catalogue`):

    shap_importance.csv, shap_by_family.csv, relationship_factors.csv, truth_recovery.csv
    explain_summary.json   headline, ranked relationship factors, PD-points translation, caveats
    shap_*.png             plots (`pipeline.plotting.shap_plots`), listed in explain_summary.json
    explain_manifest.json  the set's files and hashes: they are published whole (the report
                           refuses a partial set)
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.config import Config
from pipeline.core import catalogue
from pipeline.core.catalogue import RunFiles
from pipeline.core.io import write_csv, write_json
from pipeline.core.metadata import LABEL_COLUMN
from pipeline.core.publish import publish_set
from pipeline.modelling import dataset, shap_stability
from pipeline.modelling.trust import load_trusted_model
from pipeline.modelling.tuning_sample import training_sample
from pipeline.plotting import shap_plots
from pipeline.riskmath.attribution import Explanation, add_stability, explain
from pipeline.runs.context import RunContext
from pipeline.simulator.known_truth import known_truth, truth_counts

log = logging.getLogger(__name__)
CAUSAL_CAVEAT = (
    "SHAP shows what the model uses to predict default, not what causes it: lenders contact "
    "customers they already see as risky (reminders and check-ins go to customers paying late), "
    "so a contact feature can look harmful even where the contact itself helps. The effects "
    "study (EconML) estimates the causal effect of the levers."
)


PD_POINTS_METHOD = (
    "PD points: half the change in PD between adding and removing a feature's mean |SHAP| "
    "(log-odds) at a typical loan, the test split's median log-odds; on the model's raw "
    "(uncalibrated) scale."
)


def run(cfg: Config, run: RunContext) -> str:
    """SHAP tables, plots and the summary of `run`'s model, logged to the run."""
    result = run.train_result()
    model = load_trusted_model(result["model_uri"]).unwrap_python_model()
    data = dataset.load(cfg)
    test = data.frame.iloc[data.split.index["test"]]
    n_test = len(test)
    if cfg.explain.max_rows and n_test > cfg.explain.max_rows:
        test = test.sample(cfg.explain.max_rows, random_state=cfg.seed)
    X = model.prepare(test)
    ids = test[data.id_col].to_numpy() if data.id_col in test.columns else X.index.to_numpy()
    # Phase lines: with output in a log file or a pipe nothing else shows the stage moving.
    start = time.perf_counter()
    of = f" of {n_test:,}" if len(X) < n_test else ""
    log.info("explain: tree SHAP on %s%s test rows (explain.max_rows)", f"{len(X):,}", of)
    ex = explain(model.contributions(X), X, model.specs, monotone_features(model.booster))
    if cfg.explain.stability_refits:
        log.info(
            "explain: %d stability refits (%.0f s so far)",
            cfg.explain.stability_refits,
            time.perf_counter() - start,
        )
        train = data.split.index["train"]
        # Directions, not levels: on a large book the refits draw from the tuning sample.
        sample = training_sample(data, cfg.train.tune_rows, cfg.seed)
        train_rows = data.frame.iloc[train if sample is None else train[sample]]
        eval_rows = shap_plots.sample_rows(len(X), cfg.explain.stability_rows, cfg.seed)
        refits = shap_stability.refit_contributions(
            model.booster,
            model.prepare(train_rows),
            train_rows[LABEL_COLUMN].to_numpy(),
            train_rows["customer_id"].to_numpy() if "customer_id" in train_rows else None,
            X.iloc[eval_rows],
            cfg.explain.stability_refits,
            cfg.seed,
            cfg.train.n_jobs,
            leaf_ratio=len(train_rows) / len(train),
        )
        add_stability(ex, eval_rows, refits)
    truth = known_truth(cfg)
    if truth is not None:
        ex = truth.check(ex)
    log.info("explain: tables and plots (%.0f s so far)", time.perf_counter() - start)
    files = write_outputs(ex, run.files, cfg, ids=ids)
    for path in files:
        run.log_artifact(path, catalogue.ARTEFACT_EXPLAIN)
    metrics = {"explain_rows": len(X), "explain_median_pd_raw": ex.median_pd}
    if ex.truth is not None:
        matched, checked = truth_counts(ex.truth)
        metrics["truth_directions_matched"] = matched
        metrics["truth_effects_checked"] = checked
    run.log_metrics(metrics)
    return headline(ex)


def monotone_features(booster) -> frozenset[str]:
    """Features the booster was trained monotone in (its saved parameters)."""
    signs = booster.params.get("monotone_constraints") or []
    names = booster.feature_name()
    return frozenset(n for n, c in zip(names, signs, strict=False) if int(c) != 0)


def write_outputs(
    ex: Explanation, files: RunFiles, cfg: Config, ids: np.ndarray | None = None
) -> list[Path]:
    """Tables (CSV), plots (PNG) and explain_summary.json into the run's folder; returns the
    paths. ids: loan id of each row of `ex.X` (the waterfall titles and example loans; ids
    only)."""
    ids = np.asarray(ids) if ids is not None else ex.X.index.to_numpy()
    # One set (`pipeline.core.publish`): a killed explain leaves the previous tables and plots,
    # never new tables beside a summary that lists plots not drawn yet.
    with publish_set(files.root, "explain", catalogue.EXPLAIN_MANIFEST) as out:
        staged = RunFiles(out.root)
        written: dict[str, Path] = {}
        for name, table in _tables(ex).items():
            written[name] = write_csv(table, staged.csv(name))
        plots = shap_plots.make_all(
            ex,
            staged,
            ids,
            top=cfg.explain.top_features_plot,
            plot_rows=cfg.explain.plot_rows,
            seed=cfg.seed,
        )
        summary = summary_dict(ex, ids, plots)
        summary["files"] = {
            "tables": {k: p.name for k, p in written.items()},
            "plots": {k: v for k, v in plots.files.items()},
        }
        written["summary"] = write_json(summary, staged.explain_summary)
    return [out.final(p) for p in [*written.values(), *plots.all_files()]]


def relationship_answer(ex: Explanation, top: int = 5) -> list[str]:
    """Plain-words, ranked answer to "which relationship factors reduce default"."""
    rel = ex.relationship
    lowers = rel[rel["direction"] == "lowers"]
    raises = rel[rel["direction"] == "raises"]
    lines = []
    if lowers.empty:
        lines.append("No relationship factor lowers the predicted PD clearly.")
    for i, r in enumerate(lowers.head(top).itertuples(), start=1):
        lines.append(
            f"{i}. {r.description}: more of it lowers PD, about {r.pd_points:.2f} PD points "
            f"for a typical loan ({r.share:.1%} of all attribution)" + _turn_clause(r) + "."
        )
    if not raises.empty:
        worst = "; ".join(
            f"{r.description} ({r.pd_points:.2f} PD points)" for r in raises.head(3).itertuples()
        )
        lines.append(f"Relationship factors that go with higher PD: {worst}.")
    return lines


def caveats(ex: Explanation) -> list[str]:
    """One sentence per relationship factor whose direction disagrees with the expected one."""
    rel = ex.relationship
    out = []
    for r in rel[rel["agrees"].eq(False)].itertuples():  # None (no expectation) is not False
        out.append(
            f"{r.description}: the business expects more of it to {_verb(r.expected)} PD, but in "
            f"the model it {r.direction} PD. This is an association, not a cause: lenders "
            "contact and follow up risky customers more, and SHAP is not causal."
        )
    return out


def _verb(direction: str) -> str:
    return {"lowers": "lower", "raises": "raise"}.get(direction, direction)


def _turn_clause(r) -> str:
    return f"; it {r.monotonicity}" if r.turns else ""


def headline(ex: Explanation) -> str:
    """The plain-words answer to "which relationship factors reduce default", as a few short
    lines (one per factor): a console or a log shows it without a 1,000-character line."""
    rel = ex.relationship
    lowers = rel[rel["direction"] == "lowers"].head(5)
    lines = [
        "Relationship factors that lower the predicted PD, strongest first (PD points for a "
        f"typical loan, median PD {ex.median_pd:.2%}):"
    ]
    lines += [
        f"  {i}. {r.description}: {r.pd_points:.2f} PD points ({r.share:.1%} of attribution)"
        for i, r in enumerate(lowers.itertuples(), start=1)
    ] or ["  none found"]
    fam = ", ".join(f"{r.family} {r.share:.0%}" for r in ex.families.itertuples())
    lines.append(f"Attribution by family: {fam}.")
    for r in rel[rel["turns"]].head(2).itertuples():
        lines.append(f"{r.description}: {r.monotonicity}.")
    n_disagree = int(rel["agrees"].eq(False).sum())
    if n_disagree:
        lines.append(
            f"{n_disagree} relationship factor(s) go against the expected direction; SHAP is "
            "not causal (see the caveats)."
        )
    if ex.truth is not None:
        matched, checked = truth_counts(ex.truth)
        lines.append(f"Planted effects recovered: {matched} of the {checked} SHAP can show.")
    return "\n".join(lines)


def summary_dict(ex: Explanation, ids: np.ndarray, plots=None) -> dict:
    """explain_summary.json: what the HTML report shows first (JSON-able).

    headline (str), answer (ranked plain-words lines), relationship_factors (ranked records:
    relationship_rank, rank, feature, description, mean_abs_shap, share, pd_points, direction,
    turns, turn_at, monotonicity, expected, agrees), families, pd_translation (method,
    median_log_odds, median_pd, base_value), caveats (one per disagreeing factor),
    causal_caveat, n_rows, truth (matched, checked, table) or None; with plots: plot_rows,
    example_loans (label, loan_id, pd_raw, raises_pd, lowers_pd, file), interactions
    ({feature: colour feature}), unused_relationship_factors; `write_outputs` adds files
    ({tables: {name: csv}, plots: {kind: png or {feature: png}}})."""
    rel_cols = [
        "rank",
        "feature",
        "description",
        "mean_abs_shap",
        "share",
        "pd_points",
        "direction",
        "turns",
        "turn_at",
        "monotonicity",
        "expected",
        "agrees",
        "constrained",
        "stable_share",
    ]
    rel = ex.relationship[[c for c in rel_cols if c in ex.importance.columns]].copy()
    rel.insert(0, "relationship_rank", np.arange(1, len(rel) + 1))
    out = {
        "headline": headline(ex),
        "answer": relationship_answer(ex),
        "relationship_factors": _records(rel),
        "families": _records(ex.families),
        "pd_translation": {
            "method": PD_POINTS_METHOD,
            "median_log_odds": ex.median_log_odds,
            "median_pd": ex.median_pd,
            "base_value": ex.base_value,
        },
        "caveats": caveats(ex),
        "causal_caveat": CAUSAL_CAVEAT,
        "n_rows": len(ex.X),
        "truth": None,
    }
    if ex.truth is not None:
        matched, checked = truth_counts(ex.truth)
        out["truth"] = {"matched": matched, "checked": checked, "table": _records(ex.truth)}
    if plots is not None:
        out["plot_rows"] = plots.rows
        out["example_loans"] = plots.examples
        out["interactions"] = plots.interactions
        out["unused_relationship_factors"] = plots.unused
    return out


def _records(df: pd.DataFrame) -> list[dict]:
    """Rows as JSON-able dicts (NaN -> None, numpy scalars -> Python)."""
    clean = df.astype(object).where(df.notna(), None)
    return [
        {k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items()}
        for row in clean.to_dict(orient="records")
    ]


def _tables(ex: Explanation) -> dict[str, pd.DataFrame]:
    out = {catalogue.SHAP_IMPORTANCE: ex.importance, catalogue.SHAP_BY_FAMILY: ex.families}
    out[catalogue.RELATIONSHIP_FACTORS] = ex.relationship
    if ex.truth is not None:
        out[catalogue.TRUTH_RECOVERY] = ex.truth
    return out
