"""Backtest: an earlier snapshot scored by a model and set against what happened."""

from __future__ import annotations

import json

import mlflow
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.config import load_config
from pipeline.core.catalogue import RunFiles

pytestmark = pytest.mark.training
cli = CliRunner()


def test_backtest_scores_a_matured_snapshot_like_training_did(tiny_run):
    cfg = load_config(tiny_run.config_path)
    files = RunFiles.of(cfg.output.reports_dir, tiny_run.run_id)
    model_uri = json.loads(files.train_result.read_text())["model_uri"]
    preds = pd.read_parquet(files.predictions)
    test = preds[preds["split"] == "test"]
    as_of = test["snapshot_date"].min()
    at = test[test["snapshot_date"] == as_of]
    opts = ["--config", str(tiny_run.config_path), "--model", model_uri]
    result = cli.invoke(app, ["backtest", "--as-of", str(as_of.date()), *opts])
    assert result.exit_code == 0, result.output
    folder = next((cfg.output.reports_dir / "backtests").glob(f"*-{as_of.date()}"))
    out = json.loads((folder / "backtest.json").read_text())
    # the scoring path gives the PDs training wrote for the same loans and date
    assert out["rows"] == len(at)
    assert out["auc"] == pytest.approx(roc_auc_score(at["label"], at["pd"]), abs=1e-9)
    assert out["mean_pd"] == pytest.approx(at["pd"].mean(), rel=1e-9)
    assert out["o_e"] == pytest.approx(at["label"].sum() / at["pd"].sum(), rel=1e-9)
    tests = pd.read_csv(folder / "calibration_tests.csv")
    assert tests.loc[0, "n"] == len(at) and set(tests["scope"]) == {"all", "tier"}
    client = mlflow.MlflowClient(tiny_run.tracking_uri)
    runs = client.search_runs(
        [client.get_experiment_by_name(cfg.mlflow.experiment).experiment_id],
        filter_string="tags.`loanrisk.kind` = 'backtest'",
    )
    assert len(runs) == 1 and runs[0].data.metrics["auc"] == pytest.approx(out["auc"])
    assert runs[0].data.params["as_of"] == str(as_of.date())


def test_backtest_refuses_a_window_not_matured_or_a_date_not_in_the_data(tiny_run):
    opts = ["--config", str(tiny_run.config_path), "--model", "models:/none/1"]
    late = cli.invoke(app, ["backtest", "--as-of", "2025-01-01", *opts])
    assert late.exit_code == 2 and "has not matured" in late.output
    odd = cli.invoke(app, ["backtest", "--as-of", "2023-11-15", *opts])
    assert odd.exit_code == 2 and "no snapshot at 2023-11-15" in odd.output
