"""The whole pipeline through the CLI on a tiny simulated book, as a user runs it."""

from __future__ import annotations

import json

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.runs.metric_names import flat_metrics
from pipeline.scoring.next_best_action import ACTION_COLUMNS
from tests.helpers import tiny_overrides

pytestmark = pytest.mark.training
runner = CliRunner()


def _invoke(*args: str):
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


def _opts(overrides: list[str]) -> list[str]:
    out = []
    for o in overrides:
        out += ["-o", o]
    return out


def test_run_then_score_end_to_end(tmp_path):
    # The whole default run, effect study included: its cate.json gives the scores their
    # next-best action columns.
    ov = _opts([*tiny_overrides(tmp_path), "effects.enabled=true"])
    _invoke("generate", *ov)
    assert (tmp_path / "raw" / "truth" / "truth.json").exists()
    result = _invoke("run", *ov)
    assert "OOT test AUC" in result.output

    metrics = json.loads((tmp_path / "reports" / "metrics.json").read_text())
    assert 0.5 < metrics["test"]["auc"] <= 1.0
    assert metrics["oracle_auc"] is not None and metrics["baseline_auc"] is not None
    for key in ("auc", "gini", "ks", "brier"):
        assert key in metrics["test"]

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlruns.db'}")
    client = MlflowClient()
    run = client.get_run(metrics["run_id"])
    logged = flat_metrics(run.data.metrics)  # logged as test/auc, ... (runs.metric_names)
    assert logged["test_auc"] == pytest.approx(metrics["test"]["auc"], abs=1e-9)
    assert "oracle_auc" in logged and "benchmark/oracle_auc" in run.data.metrics
    champion = client.get_model_version_by_alias("loanrisk", "champion")
    assert champion.run_id == metrics["run_id"]

    out = tmp_path / "scores" / "portfolio.parquet"
    _invoke("score", "--input", str(tmp_path / "raw"), "--out", str(out), *ov)
    scores = pd.read_parquet(out)
    loans = pd.read_parquet(tmp_path / "raw" / "loans.parquet")
    assert len(scores) > 0 and scores["loan_id"].isin(loans["loan_id"]).all()
    assert scores["loan_id"].is_unique
    assert scores["pd"].between(0, 1).all()
    assert set(ACTION_COLUMNS) <= set(scores.columns)
    assert scores["next_best_action"].notna().all()
