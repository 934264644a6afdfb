"""Killing `train` during tuning: the run is marked, the registry and the champion alias are
untouched, and the next run succeeds.

SIGTERM is caught by the CLI: the stage unwinds and MLflow ends the run (and the trial that was
running) as FAILED; exit code 143. SIGKILL cannot be caught: the run stays RUNNING until the
next `train` finds its process gone and marks it (and its trials) KILLED; so does a run whose
end SIGTERM's unwinding could not write, or not within `cli.STOP_DEADLINE_S`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient
from typer.testing import CliRunner

from pipeline.cli import app
from tests.helpers import REPO, tiny_overrides

pytestmark = pytest.mark.training
ROOT = REPO
runner = CliRunner()


def _opts(root: Path, trials: int) -> list[str]:
    return [x for o in tiny_overrides(root, trials=trials) for x in ("-o", o)]


@pytest.fixture(scope="module")
def book(tmp_path_factory):
    """A tiny book with features and a first champion (version 1)."""
    root = tmp_path_factory.mktemp("interrupt")
    for stage in ("generate", "ingest", "features", "train"):
        result = runner.invoke(app, [stage, *_opts(root, trials=2)])
        assert result.exit_code == 0, result.output
    return root


def _client(root: Path) -> MlflowClient:
    mlflow.set_tracking_uri(f"sqlite:///{root / 'mlruns.db'}")
    return MlflowClient()


def _registry(client: MlflowClient) -> tuple[list[str], str]:
    versions = sorted(str(v.version) for v in client.search_model_versions("name='loanrisk'"))
    return versions, str(client.get_model_version_by_alias("loanrisk", "champion").version)


def _start_train(root: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "pipeline.cli",
        "train",
        "--config",
        str(ROOT / "configs" / "default.yaml"),
    ]
    return subprocess.Popen(
        [*cmd, *_opts(root, trials=500)],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_mid_tuning(client: MlflowClient, proc: subprocess.Popen, known: set[str]) -> str:
    """The new parent run's id, once it has finished at least two trials."""
    exp = client.get_experiment_by_name("loanrisk").experiment_id
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        runs = client.search_runs([exp], max_results=2000)
        parents = [
            r
            for r in runs
            if r.info.run_id not in known and "mlflow.parentRunId" not in r.data.tags
        ]
        if parents:
            pid = parents[0].info.run_id
            trials = [
                r
                for r in runs
                if r.data.tags.get("mlflow.parentRunId") == pid and r.info.status == "FINISHED"
            ]
            if len(trials) >= 2:
                return pid
        time.sleep(0.5)
    raise AssertionError("train did not reach its third trial in time")


def _children(client: MlflowClient, run_id: str) -> list:
    exp = client.get_run(run_id).info.experiment_id
    return [
        r
        for r in client.search_runs([exp], max_results=2000)
        if r.data.tags.get("mlflow.parentRunId") == run_id
    ]


def _kill(proc: subprocess.Popen, sig: int) -> tuple[int, str]:
    proc.send_signal(sig)
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    return proc.returncode, err


def test_sigterm_then_sigkill_during_tuning_then_rerun(book):
    client = _client(book)
    before = _registry(client)
    assert before == (["1"], "1")
    exp = client.get_experiment_by_name("loanrisk").experiment_id
    known = {r.info.run_id for r in client.search_runs([exp], max_results=2000)}

    proc = _start_train(book)
    termed = _wait_mid_tuning(client, proc, known)
    code, err = _kill(proc, signal.SIGTERM)
    assert code == 143, err
    assert "terminated (SIGTERM)" in err and "Traceback" not in err
    # Unwound, the run ends FAILED. When the signal landed inside an MLflow write, that write's
    # SQLite lock can keep the run's end from being written (said in a line, "while stopping"),
    # or hold the unwinding past the deadline ("not stopped within"; seen under load): the run
    # stays RUNNING as after SIGKILL, and the next train marks it KILLED.
    cut = "while stopping" in err or "not stopped within" in err
    assert client.get_run(termed).info.status == ("RUNNING" if cut else "FAILED"), err
    if not cut:
        assert {r.info.status for r in _children(client, termed)} <= {"FINISHED", "FAILED"}
    assert _registry(client) == before

    known |= {r.info.run_id for r in client.search_runs([exp], max_results=2000)}
    proc = _start_train(book)
    killed = _wait_mid_tuning(client, proc, known)
    code, _ = _kill(proc, signal.SIGKILL)
    assert code == -signal.SIGKILL
    assert client.get_run(killed).info.status == "RUNNING"  # nothing could run on SIGKILL
    assert _registry(client) == before

    result = runner.invoke(app, ["train", *_opts(book, trials=2)])
    assert result.exit_code == 0, result.output
    assert client.get_run(killed).info.status == "KILLED"
    assert all(r.info.status != "RUNNING" for r in _children(client, killed))
    versions, _ = _registry(client)
    assert versions == ["1", "2"]
    # a finished run is not touched again
    assert client.get_run(termed).info.status == ("KILLED" if cut else "FAILED")
