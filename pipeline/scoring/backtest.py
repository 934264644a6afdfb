"""Backtest: score an earlier snapshot with a given model and, where the performance window after
it has matured, set the scores against what happened.

The validator's question after approval: would this model have been right a year ago? The
snapshot comes from the feature matrix (point-in-time features and the realised label, 90+ days
past due within the window); only loans whose window has matured carry a label. The numbers are
the evaluation's (AUC, KS, Brier, O/E and the calibration tests, overall and per tier), written to
`reports/backtests/<model>-v<version>-<as_of>/` and logged as an MLflow run of kind `backtest`.
"""

from __future__ import annotations

import datetime as dt
import logging

import mlflow
import numpy as np
import pandas as pd

from pipeline.config import Config
from pipeline.core import catalogue
from pipeline.core.errors import DataError
from pipeline.core.io import write_csv, write_json
from pipeline.core.metadata import LABEL_COLUMN
from pipeline.core.publish import read_set
from pipeline.riskmath import metrics
from pipeline.riskmath.calibration_tests import calibration_tests
from pipeline.runs import tracking
from pipeline.runs.context import KIND_TAG
from pipeline.scoring.core import load_scoring_model, score_chunk

log = logging.getLogger(__name__)
BACKTEST = "backtest"


def run_backtest(cfg: Config, model_uri: str, as_of: dt.date) -> str:
    rows = _matured_snapshot(cfg, as_of)
    experiment = tracking.setup(cfg.mlflow)  # the registry the model URI refers to
    model = load_scoring_model(model_uri)
    scored = score_chunk(model, rows, top_k=0)[0]
    y = rows[LABEL_COLUMN].to_numpy(dtype="int64")
    frame = pd.DataFrame({"y": y, "pd": scored["pd"].to_numpy(), "tier": scored["tier"]})
    summary = metrics.summary(y, frame["pd"].to_numpy())
    tests = calibration_tests(frame, "y", "pd", {"tier": "tier"})
    overall = tests.iloc[0]
    folder = catalogue.backtest_dir(
        cfg.output.reports_dir, model.name, model.version, as_of.isoformat()
    )
    result = {
        "model_uri": model_uri,
        "model": model.name,
        "model_version": model.version,
        "as_of": as_of.isoformat(),
        "window_months": cfg.features.performance_window_months,
        "rows": int(len(rows)),
        **{k: summary[k] for k in ("auc", "gini", "ks", "brier", "default_rate", "mean_pd")},
        "o_e": float(overall["o_e"]),
        "calibration": str(overall["light"]),
    }
    tests_path = write_csv(tests, folder / catalogue.BACKTEST_CALIBRATION)
    json_path = write_json(result, folder / catalogue.BACKTEST_JSON)
    with mlflow.start_run(experiment_id=experiment, run_name=f"backtest-{as_of}") as active:
        mlflow.set_tags({KIND_TAG: BACKTEST, "model_uri": model_uri})
        mlflow.log_params({"as_of": as_of.isoformat(), "model_version": model.version})
        mlflow.log_metrics(
            {k: float(v) for k, v in result.items() if isinstance(v, float) and np.isfinite(v)}
        )
        mlflow.log_artifact(str(tests_path), BACKTEST)
        mlflow.log_artifact(str(json_path), BACKTEST)
    log.info("backtest run %s -> %s", active.info.run_id, folder)
    return (
        f"backtest of {model.name} v{model.version} at {as_of}: {len(rows):,} loans, AUC "
        f"{summary['auc']:.4f}, KS {summary['ks']:.4f}, {int(overall['n_defaults'])} defaults "
        f"observed vs {overall['expected_defaults']:.1f} expected (O/E {overall['o_e']:.3f}, "
        f"{overall['light']}) -> {folder}"
    )


def _matured_snapshot(cfg: Config, as_of: dt.date) -> pd.DataFrame:
    folder = cfg.data.features_dir
    path = folder / catalogue.FEATURES
    if not path.exists():
        raise DataError(f"no feature matrix at {path}: run `loanrisk features` first")
    read_set(folder)
    features = pd.read_parquet(path)
    dates = pd.to_datetime(features["snapshot_date"])
    at = features[dates == pd.Timestamp(as_of)]
    if at.empty:
        known = sorted({d.date().isoformat() for d in dates.unique()})
        raise DataError(f"no snapshot at {as_of} in {path}; snapshot dates are {', '.join(known)}")
    matured = at[at[LABEL_COLUMN].notna()]
    if matured.empty:
        raise DataError(
            f"the {cfg.features.performance_window_months}-month window after {as_of} has not "
            "matured in this data: no outcome to compare with yet; pick an earlier --as-of"
        )
    if matured[LABEL_COLUMN].nunique() < 2:
        raise DataError(f"the snapshot at {as_of} has a single outcome: nothing to rank")
    return matured.reset_index(drop=True)
