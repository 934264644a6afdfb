"""Evaluate stage: the metrics and plots a credit-risk reviewer asks for, logged into the run.

Reads the run's predictions, compares them with two challengers fitted on the same split (a
logistic-regression baseline and a WOE scorecard), tests their calibration and, when the data is
the simulated book, adds the oracle AUC (its true PD); writes `metrics.json`, tables and plots
into the run's folder (names in `pipeline.core.catalogue`) and a copy of `metrics.json` to the
reports folder.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd

from pipeline.config import Config
from pipeline.core import catalogue
from pipeline.core.io import write_csv, write_json
from pipeline.core.metadata import LABEL_COLUMN
from pipeline.modelling import challengers, dataset
from pipeline.modelling.baseline import BASELINE_PD
from pipeline.modelling.protected_cost import protected_auc
from pipeline.modelling.split import split_label
from pipeline.modelling.trust import load_trusted_model
from pipeline.plotting import performance as plots
from pipeline.plotting import validation as validation_plots
from pipeline.plotting.figures import save_png
from pipeline.riskmath import fairness, metrics, stability
from pipeline.riskmath.calibration_tests import calibration_tests
from pipeline.riskmath.characteristic_stability import csi_frame
from pipeline.riskmath.scaling import points, scaling_constants, tier
from pipeline.riskmath.trends import direction_check
from pipeline.riskmath.uncertainty import cluster_bootstrap
from pipeline.runs.context import RunContext
from pipeline.simulator.known_truth import KnownTruth, known_truth
from pipeline.sources.sensitive import sensitive_groups

log = logging.getLogger(__name__)
SEGMENTS = ("product", "region")


def run(cfg: Config, run: RunContext) -> str:
    """Metrics, tables and plots of `run`'s predictions, written and logged to the run."""
    result = run.train_result()
    preds = pd.read_parquet(run.files.predictions)
    data = dataset.load(cfg)
    out = evaluate(cfg, data, preds, known_truth(cfg))
    model = load_trusted_model(result["model_uri"]).unwrap_python_model()
    out["protected_auc"] = protected_auc(
        model.booster,
        data,
        cfg.fairness.protected,
        cfg.seed,
        cfg.train.n_jobs,
        max_rows=cfg.train.tune_rows,
    )
    figures, tables = out.pop("_figures"), out.pop("_tables")
    csi = characteristic_stability(model, data, cfg)
    tables[catalogue.CSI_TRAIN_TEST] = csi
    out["csi_max_abs_points"] = float(csi["shift_points"].abs().max())
    flat = {}
    for split, vals in out["splits"].items():
        for k, v in vals.items():
            if v is not None and np.isfinite(v):
                flat[f"{split}_{k}"] = float(v)
    for k in (
        "oracle_auc",
        "baseline_auc",
        "scorecard_auc",
        "score_psi_train_test",
        "csi_max_abs_points",
    ):
        if out.get(k) is not None:
            flat[k] = float(out[k])
    for k, v in (out.get("unseen_customers") or {}).items():
        if v is not None and np.isfinite(v):
            flat[f"test_unseen_customers_{k}"] = float(v)
    for k, v in out["calibration"].items():
        if isinstance(v, (int, float)) and np.isfinite(v):
            flat[f"test_calibration_{k}"] = float(v)
    for k, v in (out["protected_auc"] or {}).items():
        flat[f"test_auc_protected_{k}"] = float(v)
    for stat, (lower, upper) in out["intervals"].items():
        flat[f"test_{stat}_lower"], flat[f"test_{stat}_upper"] = lower, upper
    run.log_metrics(flat)
    for name, fig in figures.items():
        save_png(fig, run.files.png(name))
        run.log_artifact(run.files.png(name), catalogue.ARTEFACT_EVALUATION)
    for name, table in tables.items():
        path = write_csv(table, run.files.csv(name))
        run.log_table(table, catalogue.evaluation_table(name))
        run.log_artifact(path, catalogue.ARTEFACT_EVALUATION)
    out = {**out, "run_id": run.run_id, "model_uri": result["model_uri"]}
    write_json(out, run.files.metrics)
    write_json(out, cfg.output.reports_dir / catalogue.METRICS_JSON)
    t = out["splits"]["test"]
    msg = (
        f"{split_label(out['split_kind'])} test: AUC {t['auc']:.4f}, Gini {t['gini']:.4f}, "
        f"KS {t['ks']:.4f}, "
        f"Brier {t['brier']:.4f}"
    )
    if out.get("oracle_auc") is not None:
        msg += f"; oracle AUC {out['oracle_auc']:.4f}"
    if out.get("baseline_auc") is not None:
        msg += f"; logistic baseline AUC {out['baseline_auc']:.4f}"
    unseen = out.get("unseen_customers")
    if unseen is not None and unseen["auc"] is not None:
        msg += f"; AUC on customers unseen in training {unseen['auc']:.4f} ({unseen['n']:.0f} rows)"
    if out.get("scorecard_auc") is not None:
        msg += f"; WOE scorecard AUC {out['scorecard_auc']:.4f}"
    c = out["calibration"]
    msg += (
        f"; calibration O/E {c['o_e']:.3f} ({c['n_defaults']} observed vs "
        f"{c['expected_defaults']:.1f} expected defaults, {c['light']})"
    )
    # A progress line; the caller prints `msg` itself (once).
    log.info("evaluate: run %s, %d plots and %d tables", run.run_id, len(figures), len(tables))
    return msg


def evaluate(
    cfg: Config, data: dataset.Dataset, preds: pd.DataFrame, truth: KnownTruth | None = None
) -> dict:
    """All numbers, tables and figures of the evaluation; nothing written or logged (it reads
    the sensitive columns for the fairness table and, with `truth`, the simulated book's true
    PD for the oracle AUC)."""
    by_split = {k: preds[preds["split"] == k] for k in ("train", "valid", "test")}
    splits: dict[str, dict[str, Any]] = {}
    for k, f in by_split.items():
        y = f[LABEL_COLUMN].to_numpy()
        splits[k] = metrics.summary(y, f["pd"].to_numpy())
        raw = metrics.summary(y, f["pd_raw"].to_numpy())
        splits[k].update({f"raw_{m}": raw[m] for m in ("auc", "brier", "log_loss")})
    test = by_split["test"]
    y_test, p_test = test[LABEL_COLUMN].to_numpy(), test["pd"].to_numpy()
    figures: dict[str, Any] = {}
    tables: dict[str, pd.DataFrame] = {}
    tables[catalogue.GAINS_TEST] = metrics.gains_table(y_test, p_test)
    cal = {
        k: metrics.calibration_table(f[LABEL_COLUMN].to_numpy(), f["pd"].to_numpy())
        for k, f in by_split.items()
    }
    tables[catalogue.CALIBRATION_TEST] = cal["test"]
    X = data.X()
    idx = data.split.index
    psi = stability.psi_frame(X.iloc[idx["train"]], X.iloc[idx["test"]], list(X.columns))
    score_psi = stability.psi(
        points(by_split["train"]["pd"].to_numpy(), cfg.scoring), points(p_test, cfg.scoring)
    )
    tables[catalogue.PSI_TRAIN_TEST] = psi
    test_frame = data.frame.iloc[idx["test"]]
    seg_frame = test_frame.reset_index(drop=True).assign(pd=p_test)
    seg_tables = [
        metrics.segment_summary(seg_frame, LABEL_COLUMN, "pd", by=col).assign(segment=col)
        for col in SEGMENTS
        if col in seg_frame.columns
    ]
    if seg_tables:
        tables[catalogue.SEGMENTS_TEST] = pd.concat(seg_tables, ignore_index=True)
    interim = cfg.data.interim_dir if cfg.data.kind == "tables" else None
    groups = sensitive_groups(test_frame, interim, cfg.fairness)
    if groups is not None:
        tables[catalogue.FAIRNESS] = fairness.fairness_table(
            groups, y_test, p_test, cfg.scoring.early_warning_pd
        )
    cal_frame = seg_frame.assign(tier=tier(p_test, cfg.scoring))
    scopes = {"tier": "tier", **{c: c for c in SEGMENTS if c in cal_frame.columns}}
    tests = calibration_tests(cal_frame, LABEL_COLUMN, "pd", scopes)
    tables[catalogue.CALIBRATION_TESTS] = tests
    overall = tests.iloc[0].to_dict()
    calibration = {k: overall[k] for k in tests.columns if k not in ("scope", "group")}
    calibration.update(cal["test"].attrs)
    if "snapshot_date" in preds.columns:  # a prepared table may have no dates
        by_snapshot = performance_by_snapshot(preds)
        tables[catalogue.BY_SNAPSHOT] = by_snapshot
        figures[catalogue.OVER_TIME_PNG] = validation_plots.over_time_plot(by_snapshot)
    intervals: dict[str, tuple[float, float]] = {}
    # A customer's rows resample together; a prepared table without ids resamples rows.
    ids = [c for c in ("customer_id", "loan_id") if c in test_frame.columns]
    clusters = test_frame[ids[0]].to_numpy() if ids else np.arange(len(test_frame))
    resampled = ids[0] if ids else "row"
    if cfg.validation.bootstrap_resamples:
        boot = cluster_bootstrap(
            y_test,
            p_test,
            clusters,
            cfg.validation.bootstrap_resamples,
            cfg.validation.confidence,
            seed=cfg.seed,
        )
        tables[catalogue.BOOTSTRAP_TEST] = boot
        intervals = {r.statistic: (float(r.lower), float(r.upper)) for r in boot.itertuples()}
    if cfg.train.monotone_constraints:
        expected = {s.name: s.expected for s in data.specs if s.expected != "unknown"}
        train = idx["train"]
        tables[catalogue.CONSTRAINTS_CHECK] = direction_check(
            X.iloc[train], data.y[train], expected
        )
    fitted = test[BASELINE_PD] if BASELINE_PD in test.columns else None
    baseline = fitted.to_numpy() if fitted is not None and fitted.notna().all() else None
    comparison = challengers.compare(cfg, data, y_test, p_test, clusters, baseline)
    tables[catalogue.CHALLENGERS] = comparison.table
    if comparison.scorecard is not None:
        tables[catalogue.SCORECARD_IV] = comparison.scorecard.iv
        tables[catalogue.SCORECARD_POINTS] = comparison.scorecard.points
    curves = {k: (f[LABEL_COLUMN].to_numpy(), f["pd"].to_numpy()) for k, f in by_split.items()}
    figures[catalogue.ROC_PNG] = plots.roc_curve_plot(curves)
    figures[catalogue.KS_PNG] = plots.ks_plot(y_test, p_test)
    figures[catalogue.GAINS_PNG] = plots.gains_plot(tables[catalogue.GAINS_TEST])
    figures[catalogue.CALIBRATION_PNG] = plots.calibration_plot(cal)
    figures[catalogue.SCORE_DISTRIBUTION_PNG] = plots.score_distribution_plot(
        points(p_test, cfg.scoring), y_test
    )
    figures[catalogue.PSI_PNG] = plots.psi_plot(psi)
    out: dict[str, Any] = {
        "split_kind": data.split.kind,
        "split_dates": data.split.dates,
        "splits": splits,
        "test": splits["test"],
        "score_psi_train_test": float(score_psi),
        "calibration": calibration,
        "intervals": intervals,
        "interval_confidence": cfg.validation.confidence,
        "interval_resampled": resampled,
        "oracle_auc": truth.oracle_auc(test, cfg) if truth is not None else None,
        "unseen_customers": unseen_customers(data, test, truth, cfg),
        "baseline_auc": comparison.auc(challengers.BASELINE),
        "scorecard_auc": comparison.auc(challengers.SCORECARD),
        "_figures": figures,
        "_tables": tables,
    }
    return out


def characteristic_stability(model: Any, data: dataset.Dataset, cfg: Config) -> pd.DataFrame:
    """CSI of each model feature, test against train (`riskmath.characteristic_stability`), from
    the exact tree SHAP of at most `validation.csi_rows` rows of each split (a seeded sample)."""
    idx = data.split.index
    rng = np.random.default_rng(cfg.seed)

    def contributions(rows: np.ndarray) -> pd.DataFrame:
        if len(rows) > cfg.validation.csi_rows:
            rows = np.sort(rng.choice(rows, cfg.validation.csi_rows, replace=False))
        # `prepare` is the model's own conversion (data.X()'s), of the sampled rows only
        values = model.contributions(model.prepare(data.frame.iloc[rows]))[:, :-1]
        return pd.DataFrame(values, columns=model.feature_names)

    factor, _ = scaling_constants(cfg.scoring)
    return csi_frame(contributions(idx["train"]), contributions(idx["test"]), factor)


def performance_by_snapshot(preds: pd.DataFrame) -> pd.DataFrame:
    """Per snapshot date (and its split): rows, defaults, default rate, mean PD, O/E, AUC, KS."""
    table = metrics.segment_summary(preds, LABEL_COLUMN, "pd", by=["snapshot_date", "split"])
    table = table.assign(o_e=table["n_defaults"] / (table["mean_pd"] * table["n"]))
    cols = ["snapshot_date", "split", "n", "n_defaults", "default_rate", "mean_pd", "o_e"]
    return table[[*cols, "auc", "ks"]]


def unseen_customers(
    data: dataset.Dataset, test: pd.DataFrame, truth: KnownTruth | None, cfg: Config
) -> dict[str, float] | None:
    """The test split restricted to customers in no training or validation row (the rows the
    model was fitted, tuned and calibrated on): the out-of-time split keeps customers across
    the splits, as production does, so its AUC also rewards recognising a customer. Keys: auc,
    n (rows), n_customers, share_of_test (rows), n_defaults and oracle_auc (the true PD on the
    same rows, simulated book only: new customers may also be harder to rank); an AUC is None
    when those rows hold one class. None without customer ids. `test` holds the test split's
    predictions in the order of its rows."""
    if "customer_id" not in data.frame.columns:
        return None
    idx = data.split.index
    customers = data.frame["customer_id"].to_numpy()
    seen = np.union1d(customers[idx["train"]], customers[idx["valid"]])
    unseen = ~np.isin(customers[idx["test"]], seen)
    rows = test[unseen]
    y, p = rows[LABEL_COLUMN].to_numpy(), rows["pd"].to_numpy()
    both = len(np.unique(y)) == 2
    return {
        "auc": metrics.summary(y, p)["auc"] if both else None,
        "n": float(len(rows)),
        "n_customers": float(len(np.unique(customers[idx["test"]][unseen]))),
        "share_of_test": float(unseen.mean()) if len(unseen) else None,
        "n_defaults": float(y.sum()),
        "oracle_auc": truth.oracle_auc(rows, cfg) if truth is not None and both else None,
    }
