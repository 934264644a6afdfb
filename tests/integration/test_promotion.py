"""Promotion is the last step of a run: a run that fails anywhere leaves the champion alias where it
was, and the later stages never change the training run's status."""

from __future__ import annotations

import json

import mlflow
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from pipeline import runner
from pipeline.cli import app
from pipeline.config import load_config
from pipeline.core import catalogue
from pipeline.core.errors import Terminated
from pipeline.runs.context import latest_run, open_run
from pipeline.stages import evaluate, explain, report, train
from tests.helpers import tiny_overrides

pytestmark = pytest.mark.training
cli = CliRunner()


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    """A tiny book with features and a first champion (version 1)."""
    root = tmp_path_factory.mktemp("promotion")
    opts = [x for o in tiny_overrides(root, trials=2) for x in ("-o", o)]
    for stage in ("generate", "ingest", "features", "train"):
        result = cli.invoke(app, [stage, *opts])
        assert result.exit_code == 0, result.output
    return root


def _cfg(root):
    return load_config(None, tiny_overrides(root, trials=2))


def _champion(cfg) -> str:
    client = MlflowClient(tracking_uri=cfg.mlflow.tracking_uri)
    return str(client.get_model_version_by_alias("loanrisk", "champion").version)


def test_a_run_failing_at_its_report_leaves_the_champion(book, monkeypatch):
    cfg = _cfg(book)
    assert _champion(cfg) == "1"
    seen = {}

    def full_disk(cfg_, run):
        seen["champion while reporting"] = _champion(cfg_)
        seen["decision"] = run.train_result()["decision"]
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(report, "run", full_disk)
    with pytest.raises(OSError, match="No space left"):
        runner.run(cfg)
    # The same data and seed give the same model: the gate would promote it, after the report.
    assert seen["decision"]["promoted"] is True
    assert seen["champion while reporting"] == "1"
    assert _champion(cfg) == "1"
    client = MlflowClient(tracking_uri=cfg.mlflow.tracking_uri)
    versions = client.search_model_versions("name='loanrisk'")
    newest = max(versions, key=lambda v: int(v.version))
    assert newest.version != "1" and newest.tags["promotion"] == "aborted"
    result = json.loads(open_run(cfg, newest.run_id).files.train_result.read_text())
    assert result["decision"]["promoted"] is False and result["decision"]["aborted"] is True
    logged = mlflow.artifacts.load_dict(f"runs:/{newest.run_id}/{catalogue.PROMOTION_JSON}")
    assert logged["aborted"] is True
    assert client.get_run(newest.run_id).data.metrics["promotion/promoted"] == 0.0


@pytest.mark.parametrize("writer", ["_write_predictions", "_write_result"])
def test_train_failing_to_write_its_files_leaves_the_champion(book, monkeypatch, writer):
    # A read-only reports folder: train used to move the alias first, then fail.
    cfg = _cfg(book)
    before = _champion(cfg)
    client = MlflowClient(tracking_uri=cfg.mlflow.tracking_uri)
    known = {v.version for v in client.search_model_versions("name='loanrisk'")}

    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied", str(cfg.output.reports_dir))

    monkeypatch.setattr(train, writer, read_only)
    opts = [x for o in tiny_overrides(book, trials=2) for x in ("-o", o)]
    result = cli.invoke(app, ["train", *opts])
    # an unwritable output folder is the user's to fix: exit 2 naming it (issue 14, point 9)
    assert result.exit_code == 2, result.output
    assert f"Permission denied: {cfg.output.reports_dir}" in result.output
    assert _champion(cfg) == before
    new = [v for v in client.search_model_versions("name='loanrisk'") if v.version not in known]
    # predictions are written before the model is registered, train_result.json after
    assert len(new) == (writer == "_write_result")
    assert all(v.tags["promotion"] == "aborted" for v in new)


def test_later_stages_never_reopen_the_training_run(book, monkeypatch):
    # A SIGTERM in evaluate (or explain, report) used to end the champion's run FAILED; after a
    # SIGKILL there, the next train marked it KILLED. They log to it by id and leave it FINISHED.
    cfg = _cfg(book)
    run = latest_run(cfg)
    status = {}

    def terminated(cfg_):
        status["during"] = run.client.get_run(run.run_id).info.status
        raise Terminated("signal 15")

    monkeypatch.setattr(evaluate.dataset, "load", terminated)
    with pytest.raises(Terminated):
        evaluate.run(cfg, run)
    assert status["during"] == "FINISHED"
    assert run.client.get_run(run.run_id).info.status == "FINISHED"
    assert mlflow.active_run() is None


def test_a_run_failing_at_explain_leaves_the_champion_and_says_so(book, monkeypatch):
    cfg = _cfg(book)
    before = _champion(cfg)

    def sigterm(cfg_, run):
        raise Terminated("signal 15")

    monkeypatch.setattr(explain, "run", sigterm)
    with pytest.raises(Terminated):
        runner.run(cfg)
    assert _champion(cfg) == before
    client = MlflowClient(tracking_uri=cfg.mlflow.tracking_uri)
    newest = max(client.search_model_versions("name='loanrisk'"), key=lambda v: int(v.version))
    assert newest.tags["promotion"] == "aborted"
    result = json.loads(open_run(cfg, newest.run_id).files.train_result.read_text())
    assert result["decision"]["aborted"] is True
    assert client.get_run(newest.run_id).info.status == "FINISHED"  # training itself finished
