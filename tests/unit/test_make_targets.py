"""The Make targets of what people look at: `make notebooks` registers the `loanrisk` kernel the
notebooks name (JupyterLab is in the dev extra, so `make setup` then `make notebooks` is enough to
open them); `make ui` starts one worker and prints the address of MLflow's machine-learning
view."""

from __future__ import annotations

import json
import subprocess
import sys
import tomllib

import jupytext

from tests.helpers import REPO


def test_notebooks_name_the_kernel_make_notebooks_registers():
    dry = subprocess.run(
        ["make", "-n", "notebooks", "STAMP=/dev/null"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "-m ipykernel install --sys-prefix --name loanrisk" in dry
    for script in sorted((REPO / "notebooks").glob("*.py")):
        spec = jupytext.read(script).metadata["kernelspec"]
        assert spec["name"] == "loanrisk", script.name
        assert spec["language"] == "python"


def test_the_registered_kernel_starts_this_interpreter(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "ipykernel", "install", "--prefix", str(tmp_path), "--name",
         "loanrisk", "--display-name", "Python (loanrisk)"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    kernel = json.loads((tmp_path / "share/jupyter/kernels/loanrisk/kernel.json").read_text())
    assert kernel["argv"][0] == sys.executable and kernel["display_name"] == "Python (loanrisk)"


def test_jupyterlab_is_in_the_dev_extra():
    dev = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(req.startswith("jupyterlab") for req in dev["dev"])


def test_make_ui_starts_one_worker_and_prints_the_machine_learning_view():
    dry = subprocess.run(
        ["make", "-n", "ui", "STAMP=/dev/null", "PORT=5123"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "--workers 1" in dry and "--port 5123" in dry
    assert "http://127.0.0.1:5123/#/?workflowType=machine_learning" in dry


def test_make_help_prints_no_unexpanded_make_variables():
    out = subprocess.run(
        ["make", "help"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout
    assert "ui " in out and "notebooks" in out
    assert "$(" not in out  # was a literal $(PORT)


def test_run_help_keeps_its_bracketed_words():
    from typer.testing import CliRunner

    from pipeline.cli import app

    out = CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "200"}).output
    assert "(generate when no data) -> ingest" in out  # rich markup once ate "[generate]"
