"""A copied project's store: MLflow recorded the original's absolute artefact folder, and the copy
would write its models there. The set-up stops with exit 2 and a hint instead."""

from __future__ import annotations

import shutil

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.config import MlflowConfig
from pipeline.core.errors import ConfigError
from pipeline.runs import tracking


def _cfg(root) -> MlflowConfig:
    return MlflowConfig(
        tracking_uri=f"sqlite:///{root / 'mlruns.db'}",
        experiment="loanrisk",
        artifact_location=root / "mlartifacts",
    )


def test_a_copied_store_is_refused_with_a_hint(tmp_path):
    original, copy = tmp_path / "project", tmp_path / "copy"
    original.mkdir()
    tracking.setup(_cfg(original))
    assert tracking.setup(_cfg(original))  # the same folder opens again
    shutil.copytree(original, copy)
    with pytest.raises(ConfigError) as err:
        tracking.setup(_cfg(copy))
    text = str(err.value)
    assert str(original / "mlartifacts") in text and str(copy / "mlartifacts") in text
    assert "copied or moved" in text and "mlflow.artifact_location=" in text


def test_the_cli_exits_2_on_a_copied_store(tmp_path):
    original, copy = tmp_path / "project", tmp_path / "copy"
    original.mkdir()
    tracking.setup(_cfg(original))
    shutil.copytree(original, copy)
    opts = [
        "-o",
        f"mlflow.tracking_uri=sqlite:///{copy / 'mlruns.db'}",
        "-o",
        f"mlflow.artifact_location={copy / 'mlartifacts'}",
    ]
    result = CliRunner().invoke(app, ["evaluate", *opts])
    assert result.exit_code == 2, result.output
    assert "copied or moved" in result.output and "Traceback" not in result.output
