"""Evaluate: the metrics and plots a credit-risk reviewer asks for, logged into the training run.

Reads the last training run's predictions, adds the oracle (the generator's true PD, when the
data is the simulated book) and a logistic-regression baseline on the same features, and writes
`reports/metrics.json` plus tables and plots under `reports/<run_id>/`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.compose import ColumnTransformer  # noqa: E402
from sklearn.impute import SimpleImputer  # noqa: E402
from sklearn.linear_model import LogisticRegression  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import OneHotEncoder, StandardScaler  # noqa: E402

from pipeline.config import Config  # noqa: E402
from pipeline.core import privacy  # noqa: E402
from pipeline.core.io import write_json  # noqa: E402
from pipeline.core.metadata import LABEL_COLUMN  # noqa: E402
from pipeline.modelling import dataset  # noqa: E402
from pipeline.plotting import performance as plots  # noqa: E402
from pipeline.riskmath import fairness, metrics  # noqa: E402
from pipeline.riskmath.scaling import points  # noqa: E402
from pipeline.runs import tracking  # noqa: E402
from pipeline.stages import train  # noqa: E402

log = logging.getLogger(__name__)
SEGMENTS = ("product", "region")


def run(cfg: Config) -> str:
    latest = train.latest(cfg)
    run_dir = Path(latest["run_dir"])
    preds = pd.read_parquet(run_dir / "predictions.parquet")
    data = dataset.load(cfg)
    result = evaluate(cfg, data, preds, run_dir)
    tracking.setup(cfg.mlflow)
    with mlflow.start_run(run_id=latest["run_id"]):
        flat = {}
        for split, vals in result["splits"].items():
            for k, v in vals.items():
                if v is not None and np.isfinite(v):
                    flat[f"{split}_{k}"] = float(v)
        for k in ("oracle_auc", "baseline_auc", "score_psi_train_test"):
            if result.get(k) is not None:
                flat[k] = float(result[k])
        mlflow.log_metrics(flat)
        for name, fig in result.pop("_figures").items():
            fig.savefig(run_dir / name, dpi=110, bbox_inches="tight")
            mlflow.log_figure(fig, f"evaluation/{name}")
            plt.close(fig)
        for name, table in result.pop("_tables").items():
            table.to_csv(run_dir / f"{name}.csv", index=False)
            mlflow.log_table(table, f"evaluation/{name}.json")
            mlflow.log_artifact(str(run_dir / f"{name}.csv"), "evaluation")
    out = {**result, "run_id": latest["run_id"], "model_uri": latest["model_uri"]}
    write_json(out, run_dir / "metrics.json")
    write_json(out, cfg.output.reports_dir / "metrics.json")
    t = result["splits"]["test"]
    msg = (
        f"OOT test: AUC {t['auc']:.4f}, Gini {t['gini']:.4f}, KS {t['ks']:.4f}, "
        f"Brier {t['brier']:.4f}"
    )
    if result.get("oracle_auc") is not None:
        msg += f"; oracle AUC {result['oracle_auc']:.4f}"
    if result.get("baseline_auc") is not None:
        msg += f"; logistic baseline AUC {result['baseline_auc']:.4f}"
    log.info(msg)
    return msg


def evaluate(cfg: Config, data: dataset.Dataset, preds: pd.DataFrame, run_dir: Path) -> dict:
    """All numbers, tables and figures of the evaluation (no MLflow calls)."""
    run_dir.mkdir(parents=True, exist_ok=True)
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
    tables["gains_test"] = metrics.gains_table(y_test, p_test)
    cal = {
        k: metrics.calibration_table(f[LABEL_COLUMN].to_numpy(), f["pd"].to_numpy())
        for k, f in by_split.items()
    }
    tables["calibration_test"] = cal["test"]
    X = data.X()
    idx = data.split.index
    psi = metrics.psi_frame(X.iloc[idx["train"]], X.iloc[idx["test"]], list(X.columns))
    score_psi = metrics.psi(
        points(by_split["train"]["pd"].to_numpy(), cfg.scoring), points(p_test, cfg.scoring)
    )
    tables["psi_train_test"] = psi
    seg_frame = data.frame.iloc[idx["test"]].reset_index(drop=True)
    seg_frame = seg_frame.assign(pd=p_test)
    seg_tables = [
        metrics.segment_summary(seg_frame, LABEL_COLUMN, "pd", by=col).assign(segment=col)
        for col in SEGMENTS
        if col in seg_frame.columns
    ]
    if seg_tables:
        tables["segments_test"] = pd.concat(seg_tables, ignore_index=True)
    interim = cfg.data.interim_dir if cfg.data.kind == "tables" else None
    groups = fairness.sensitive_groups(data.frame.iloc[idx["test"]], interim)
    if groups is not None:
        tables["fairness"] = fairness.fairness_table(
            groups, y_test, p_test, cfg.scoring.early_warning_pd
        )
    curves = {k: (f[LABEL_COLUMN].to_numpy(), f["pd"].to_numpy()) for k, f in by_split.items()}
    figures["roc.png"] = plots.roc_curve_plot(curves)
    figures["ks.png"] = plots.ks_plot(y_test, p_test)
    figures["gains.png"] = plots.gains_plot(tables["gains_test"])
    figures["calibration.png"] = plots.calibration_plot(cal)
    figures["score_distribution.png"] = plots.score_distribution_plot(
        points(p_test, cfg.scoring), y_test
    )
    figures["psi.png"] = plots.psi_plot(psi)
    out: dict[str, Any] = {
        "split_kind": data.split.kind,
        "split_dates": data.split.dates,
        "splits": splits,
        "test": splits["test"],
        "score_psi_train_test": float(score_psi),
        "oracle_auc": _oracle_auc(cfg, test),
        "baseline_auc": baseline_auc(data),
        "_figures": figures,
        "_tables": tables,
    }
    return out


def _oracle_auc(cfg: Config, test: pd.DataFrame) -> float | None:
    """AUC of the simulator's true PD on the test rows: the best any model could do."""
    truth = Path(cfg.data.raw_dir) / "truth" / "true_pd.parquet"
    if cfg.data.kind != "tables" or not truth.exists():
        return None
    tp = privacy.pseudonymise_ids(pd.read_parquet(truth), cfg.privacy)
    merged = test.merge(tp, on=["loan_id", "snapshot_date"], how="inner")
    if len(merged) < 0.95 * len(test):
        log.warning("true PD found for only %d of %d test rows", len(merged), len(test))
    if merged[LABEL_COLUMN].nunique() < 2:
        return None
    return float(roc_auc_score(merged[LABEL_COLUMN], merged["true_pd"]))


def baseline_auc(data: dataset.Dataset) -> float:
    """A logistic regression on the same features: what the boosted trees must beat."""
    parts = data.parts()
    num = [s.name for s in data.specs if s.kind == "numeric"]
    cat = [s.name for s in data.specs if s.kind == "categorical"]
    pre = ColumnTransformer(
        [
            (
                "num",
                make_pipeline(
                    SimpleImputer(strategy="median", add_indicator=True), StandardScaler()
                ),
                num,
            ),
            (
                "cat",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value="missing"),
                    OneHotEncoder(handle_unknown="ignore"),
                ),
                cat,
            ),
        ]
    )
    model = make_pipeline(pre, LogisticRegression(max_iter=2000))
    X_train, y_train = parts["train"]
    X_test, y_test = parts["test"]
    model.fit(_as_object(X_train, cat), y_train)
    return float(roc_auc_score(y_test, model.predict_proba(_as_object(X_test, cat))[:, 1]))


def _as_object(X: pd.DataFrame, cat: list[str]) -> pd.DataFrame:
    X = X.copy()
    for c in cat:
        X[c] = X[c].astype(object).where(X[c].notna(), "missing")
    return X
