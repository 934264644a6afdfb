"""`data.kind: table`: a prepared modelling table (one row per loan, a 0/1 target) through
train -> evaluate -> explain -> report, on a small flat frame and on the German Credit data."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from pipeline import runner
from pipeline.cli import app
from pipeline.config import load_config
from pipeline.core.errors import DataError
from pipeline.modelling import dataset
from pipeline.sources import example_data

cli = CliRunner()


def _table_config(root, path, target="default_flag", id_col="loan_ref", trials=3, extra=()):
    return load_config(
        "configs/default.yaml",
        [
            "data.kind=table",
            f"data.path={path}",
            f"data.target={target}",
            f"data.id={id_col}",
            f"output.reports_dir={root / 'reports'}",
            f"mlflow.tracking_uri=sqlite:///{root / 'mlruns.db'}",
            f"mlflow.artifact_location={root / 'mlartifacts'}",
            f"train.n_trials={trials}",
            "train.n_jobs=1",
            "train.num_boost_round=300",
            *extra,
        ],
    )


def _flat_frame(n: int = 1200, seed: int = 0) -> pd.DataFrame:
    """Loans with two real signals (utilisation up, tenure down), one category and noise."""
    rng = np.random.default_rng(seed)
    util = rng.uniform(0, 1, n)
    tenure = rng.integers(1, 120, n)
    grade = rng.choice(["A", "B", "C"], n)
    logit = -2.0 + 2.5 * util - 0.015 * tenure + np.where(grade == "C", 0.8, 0.0)
    y = (rng.uniform(size=n) < 1 / (1 + np.exp(-logit))).astype(int)
    return pd.DataFrame(
        {
            "loan_ref": np.arange(10_000, 10_000 + n),
            "utilisation": util,
            "tenure_months": tenure,
            "grade": grade,
            "noise": rng.normal(size=n),
            "default_flag": y,
        }
    )


@pytest.mark.training
def test_flat_table_runs_end_to_end_with_a_random_split(tmp_path):
    path = tmp_path / "loans.csv"
    _flat_frame().to_csv(path, index=False)
    cfg = _table_config(tmp_path, path)
    summary = runner.run(cfg)

    metrics = json.loads((tmp_path / "reports" / "metrics.json").read_text())
    assert metrics["split_kind"] == "random"
    assert metrics["oracle_auc"] is None  # no simulator truth for a user's table
    assert metrics["test"]["auc"] > 0.65
    n = {k: metrics["splits"][k]["n"] for k in ("train", "valid", "test")}
    assert n == {"train": 720, "valid": 240, "test": 240}  # 60/20/20, stratified
    preds = pd.read_parquet(tmp_path / "reports" / metrics["run_id"] / "predictions.parquet")
    assert set(preds.columns) >= {"loan_ref", "split", "pd"} and preds["loan_ref"].is_unique
    imp = pd.read_csv(tmp_path / "reports" / metrics["run_id"] / "shap_importance.csv")
    assert set(imp.head(2)["feature"]) == {"utilisation", "tenure_months"}

    page = (tmp_path / "reports" / metrics["run_id"] / "report.html").read_text()
    assert str(tmp_path / "reports" / metrics["run_id"] / "report.html") in summary
    assert "The split is random" in page
    # the console names the split for what it is
    assert "random-split test" in summary and "OOT" not in summary
    assert "no relationship (CRM) features" in page
    assert f"{metrics['test']['auc']:.4f}" in page


def test_table_mode_rejects_a_target_that_is_not_0_1(tmp_path):
    df = _flat_frame(50)
    df.loc[3, "default_flag"] = 2
    path = tmp_path / "loans.parquet"
    df.to_parquet(path, index=False)
    with pytest.raises(
        DataError, match=r"target column 'default_flag' \(data.target\) must be 0/1.*row 4: 2 "
    ):
        dataset.load(_table_config(tmp_path, path))


def test_table_mode_names_a_missing_id_column(tmp_path):
    path = tmp_path / "loans.csv"
    _flat_frame(50).to_csv(path, index=False)
    with pytest.raises(DataError, match=r"column 'loan_id' \(data.id\) not found"):
        dataset.load(_table_config(tmp_path, path, id_col="loan_id"))


def test_germancredit_comes_from_the_installed_package(tmp_path):
    df = example_data.germancredit()
    assert len(df) == 1000 and df["bad"].sum() == 300  # the data set's 700 good / 300 bad
    assert df["application_id"].is_unique
    assert not set(example_data.GERMANCREDIT_SENSITIVE) & set(df.columns)
    out = tmp_path / "gc.parquet"
    result = cli.invoke(app, ["example-data", "germancredit", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert pd.read_parquet(out).shape == df.shape
    bad = cli.invoke(app, ["example-data", "nosuchdata", "--out", str(out)])
    assert bad.exit_code == 2 and "unknown example data set" in bad.output


@pytest.mark.training
def test_germancredit_table_mode_beats_chance_clearly(tmp_path):
    path = example_data.write("germancredit", tmp_path / "germancredit.csv")
    cfg = load_config(
        "configs/germancredit.yaml",
        [
            f"data.path={path}",
            f"output.reports_dir={tmp_path / 'reports'}",
            f"mlflow.tracking_uri=sqlite:///{tmp_path / 'mlruns.db'}",
            f"mlflow.artifact_location={tmp_path / 'mlartifacts'}",
            "train.n_trials=5",
        ],
    )
    assert cfg.data.kind == "table" and cfg.mlflow.registered_model != "loanrisk"
    runner.run(cfg)
    metrics = json.loads((tmp_path / "reports" / "metrics.json").read_text())
    assert metrics["split_kind"] == "random"
    assert metrics["test"]["auc"] > 0.65
    assert metrics["splits"]["test"]["n"] == 200
