"""A run is the user's unit of work: its evaluate/explain/report go into it, whatever else runs
on the same store, and its pictures are what its stages draw alone.

Before the run context, `reports/latest_run.json` told evaluate, explain and report which run
to work on: a `loanrisk train` that finished while a `loanrisk run` was between its train and
its report sent the first run's evaluation into the second run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from pipeline import runner as pipeline_runner
from pipeline.cli import app
from pipeline.config import load_config
from pipeline.core.catalogue import RunFiles
from pipeline.stages import train as train_stage
from tests.helpers import REPO, tiny_overrides

pytestmark = [pytest.mark.training, pytest.mark.slow]
cli = CliRunner()
# Artefact folders only evaluate, explain and report write into a run.
LATER_STAGES = ("evaluation", "explain", "report")


def _opts(root: Path, trials: int = 2) -> list[str]:
    return [x for o in tiny_overrides(root, trials=trials) for x in ("-o", o)]


def _invoke(*args: str) -> str:
    result = cli.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def _folders(client: MlflowClient, run_id: str) -> set[str]:
    return {a.path for a in client.list_artifacts(run_id)}


def _client(root: Path) -> MlflowClient:
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlruns.db'}")
    return MlflowClient()


def test_a_train_finishing_inside_a_run_does_not_take_its_evaluation(tmp_path, monkeypatch):
    """The race made deterministic: a second training run finishes between the run's train and
    its evaluate (the latest finished training run is then the second one)."""
    _invoke("generate", *_opts(tmp_path))
    cfg = load_config(None, tiny_overrides(tmp_path, trials=2))
    original = train_stage.fit
    others: list[str] = []

    def train_then_another(cfg_):
        mine = original(cfg_)
        # a `loanrisk train` elsewhere (fit, then promote), finished later
        others.append(train_stage.promote(cfg_, original(cfg_)).run_id)
        return mine

    monkeypatch.setattr(pipeline_runner.train, "fit", train_then_another)
    out = pipeline_runner.run(cfg)
    mine = re.search(r"run (\w+): OOT", out).group(1)
    assert others and others[0] != mine
    client = _client(tmp_path)
    assert set(LATER_STAGES) <= _folders(client, mine)
    assert not set(LATER_STAGES) & _folders(client, others[0])
    assert RunFiles.of(tmp_path / "reports", mine).report.exists()
    assert not RunFiles.of(tmp_path / "reports", others[0]).report.exists()
    # The stand-alone command without --run-id takes the latest finished training run.
    assert others[0] in _invoke("report", *_opts(tmp_path))


def test_run_and_train_started_together_each_keep_their_own_run(tmp_path):
    for stage in ("generate", "ingest", "features"):  # train alone needs the features
        _invoke(stage, *_opts(tmp_path))
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    base = [sys.executable, "-m", "pipeline.cli", "-q"]
    procs = {
        name: subprocess.Popen(
            [*base, name, *_opts(tmp_path)],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("run", "train")
    }
    outs = {}
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, stderr[-3000:]
        outs[name] = stdout
    ids = {name: re.search(r"run (\w+): OOT", out).group(1) for name, out in outs.items()}
    assert ids["run"] != ids["train"]
    client = _client(tmp_path)
    assert set(LATER_STAGES) <= _folders(client, ids["run"])
    assert not set(LATER_STAGES) & _folders(client, ids["train"])
    assert str(RunFiles.of(tmp_path / "reports", ids["run"]).report) in outs["run"]

    # Every picture of the run is what its own stage draws alone on the same run, byte for byte
    # (no figure, style or random state carried over from tuning or another stage).
    files = RunFiles.of(tmp_path / "reports", ids["run"])
    before = {p.name: p.read_bytes() for p in files.pngs()}
    assert len(before) >= 10
    for stage in ("evaluate", "explain"):
        _invoke(stage, *_opts(tmp_path), "--run-id", ids["run"])
    after = {p.name: p.read_bytes() for p in files.pngs()}
    assert after.keys() == before.keys()
    assert [n for n in before if before[n] != after[n]] == []


def test_unknown_run_id_is_a_clear_error(tmp_path):
    result = cli.invoke(app, ["evaluate", *_opts(tmp_path), "--run-id", "f" * 32])
    assert result.exit_code == 2
    assert "no run 'ffffffffffffffffffffffffffffffff' in the tracking store" in result.output
