"""What `loanrisk run` and `loanrisk ingest` print when their output goes to a log file (not a
terminal), as under `make train > log` or a scheduler: no MLflow log format or prints, the
summary once, short lines, progress lines during tuning and explain, labelled AUCs."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.helpers import tiny_overrides

pytestmark = pytest.mark.training


def _loanrisk(*args: str, overrides: list[str]) -> subprocess.CompletedProcess:
    opts = [a for o in overrides for a in ("-o", o)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("MLFLOW_LOGGING_LEVEL", None)  # the CLI's own default is what is tested
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args, *opts],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        check=False,
    )


def test_run_console_has_no_library_noise_and_prints_the_summary_once(tmp_path):
    # The study on: its estimators (EconML, scikit-learn) are the noisiest libraries of a run.
    ov = [*tiny_overrides(tmp_path, trials=4), "effects.enabled=true"]
    res = _loanrisk("run", overrides=ov)
    assert res.returncode == 0, res.stderr[-3000:]
    out, err = res.stdout, res.stderr
    # MLflow's own log format and its prints ("Successfully registered model ...")
    assert " INFO mlflow" not in err and "Successfully registered" not in err
    assert "Created version" not in err and "Downloading artifacts" not in err
    assert "Tight layout not applied" not in err and "UserWarning" not in err
    # The train summary once: on stdout, with a short progress line in the log.
    train_line = next(line for line in out.splitlines() if line.startswith("run "))
    assert "test AUC" in train_line and "raw PD" in train_line and "calibrated PD" in train_line
    assert "test AUC" not in err and "promotion:" not in err
    assert "tuning: 4/4 trials" in err and "explain: tree SHAP on" in err
    assert max(len(line) for line in out.splitlines()) < 400  # explain was one 1,000-char line
    assert out.count("Relationship factors that lower the predicted PD") == 1


def test_ingest_prints_a_table_summary_not_a_python_dict(tmp_path):
    ov = tiny_overrides(tmp_path)
    assert _loanrisk("generate", overrides=ov).returncode == 0
    res = _loanrisk("ingest", overrides=ov)
    assert res.returncode == 0, res.stderr
    assert "PosixPath" not in res.stdout and "{" not in res.stdout
    lines = res.stdout.splitlines()
    assert lines[0] == f"4 table(s) validated and written -> {tmp_path / 'interim'}:"
    assert any(line.split()[0] == "customers" and line.endswith(" rows") for line in lines[1:])
