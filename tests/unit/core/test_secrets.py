"""Secrets in URLs are masked in errors, logs, MLflow params and the logged config."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace

import mlflow
import numpy as np
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.config import Config, DataConfig, MlflowConfig
from pipeline.core.secrets import SecretFilter, mask_secrets, mask_value, safe_url
from pipeline.stages import train

SECRET = "s3cr3t-Pa55"
URL = f"postgresql+psycopg://loan_reader:{SECRET}@db.example:5432/book"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        (URL, "postgresql+psycopg://loan_reader:***@db.example:5432/book"),
        ("mysql://root:@h/db", "mysql://root:***@h/db"),
        ("https://h/x?user=a&password=abc&b=1", "https://h/x?user=a&password=***&b=1"),
        ("see sqlite:///mlruns.db and data/raw", "see sqlite:///mlruns.db and data/raw"),
        ("postgresql://u:p%40ss/w@h/db", "postgresql://u:***@h/db"),
    ],
)
def test_mask_secrets(text: str, masked: str) -> None:
    assert mask_secrets(text) == masked


def test_one_masking_for_urls_and_text() -> None:
    """safe_url and mask_secrets are one mechanism: a password in the user info, in the query
    string or given by value never shows (there were two functions, and one left ?password=)."""
    url = "postgresql+psycopg://analyst:s3cr%40t@db:5432/lending?sslmode=require&password=q9"
    shown = safe_url(url)
    assert "s3cr" not in shown and "q9" not in shown
    assert "analyst" in shown and "sslmode=require" in shown
    assert mask_secrets("failed: s3cr@t at db", "s3cr@t") == "failed: *** at db"
    assert mask_secrets(f"could not connect to {url}", "s3cr@t").count("***") == 2
    assert safe_url("not a url, password=zz") == "not a url, password=***"


def test_mask_value_recurses() -> None:
    out = mask_value({"a": [URL, 3], "b": {"c": (URL,)}})
    assert SECRET not in json.dumps(out)
    assert out["a"][1] == 3


def test_log_records_are_masked() -> None:
    record = logging.LogRecord("pipeline", logging.INFO, __file__, 1, "reading %s", (URL,), None)
    assert SecretFilter().filter(record)
    assert SECRET not in record.getMessage() and "loan_reader:***@" in record.getMessage()


def test_config_error_does_not_echo_a_password() -> None:
    result = CliRunner().invoke(app, ["ingest", "-o", f"mlflow.promotion_tolerance={URL}"])
    assert result.exit_code == 2
    assert "mlflow.promotion_tolerance" in result.output
    assert SECRET not in result.output and "loan_reader:***@" in result.output


def test_logged_params_and_config_mask_url_passwords(tmp_path: Path) -> None:
    table = tmp_path / "table.csv"
    table.write_text("id,y\n1,0\n2,1\n")
    cfg = Config(
        data=DataConfig(kind="table", path=table, target="y", id="id"),
        mlflow=MlflowConfig(tracking_uri=URL),  # logged only; the store below is used
    )
    data = SimpleNamespace(
        specs=[],
        y=np.array([0, 1, 0, 1], dtype=np.int8),
        split=SimpleNamespace(
            index={"train": np.array([0, 1]), "test": np.array([2, 3])}, kind="random", dates={}
        ),
    )
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlruns.db'}")
    exp = mlflow.create_experiment("t", artifact_location=(tmp_path / "art").as_uri())
    with mlflow.start_run(experiment_id=exp) as run:
        train._log_context(cfg, data)
    logged = MlflowClient().get_run(run.info.run_id)
    assert logged.data.params["mlflow.tracking_uri"] == mask_secrets(URL)
    assert all(SECRET not in v for v in logged.data.params.values())
    art = Path(logged.info.artifact_uri.removeprefix("file://"))
    for f in art.rglob("*"):
        if f.is_file():
            assert SECRET not in f.read_text(), f
    assert json.loads((art / "config.json").read_text())["mlflow"]["tracking_uri"] == mask_secrets(
        URL
    )
