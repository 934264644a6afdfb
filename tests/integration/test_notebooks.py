"""The notebooks run top to bottom on a tiny book and a tiny run; any cell error fails the test.

Only the jupytext scripts (notebooks/*.py) are committed; each test builds the notebook from
its script, executes it in a fresh kernel with nbclient (cwd = the repository root, so the
kernel imports this checkout's `pipeline`) and writes the executed .ipynb to a temp folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient

from tests.helpers import REPO

pytestmark = pytest.mark.training

ROOT = REPO
NOTEBOOKS = ROOT / "notebooks"
CELL_TIMEOUT_S = 120


def execute(script: Path, env: dict[str, str], out: Path) -> nbformat.NotebookNode:
    nb = jupytext.read(script)
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(ROOT)}},
    )
    client.execute(env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", **env})
    nbformat.validate(nb)
    nbformat.write(nb, out)
    return nb


def text_of(nb: nbformat.NotebookNode) -> str:
    parts = []
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            parts.append(output.get("text", ""))
            parts.append(output.get("data", {}).get("text/plain", ""))
    return "\n".join(parts)


def images_of(nb: nbformat.NotebookNode) -> int:
    return sum(
        "image/png" in output.get("data", {})
        for cell in nb.cells
        for output in cell.get("outputs", [])
    )


def test_scripts_are_paired_percent_notebooks():
    for script in sorted(NOTEBOOKS.glob("*.py")):
        nb = jupytext.read(script)
        assert nb.metadata["jupytext"]["formats"] == "ipynb,py:percent", script.name
        assert nb.metadata["kernelspec"]["name"] == "loanrisk"  # `make notebooks` registers it
        assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells), script.name
    assert {p.name for p in NOTEBOOKS.glob("*.py")} == {"01-explore-book.py", "02-review-run.py"}


def test_make_notebooks_builds_the_pairs_without_touching_the_scripts(tmp_path):
    # What `make notebooks` runs, on copies: the committed scripts must come back unchanged.
    for script in NOTEBOOKS.glob("*.py"):
        shutil.copy(script, tmp_path / script.name)
    copies = sorted(tmp_path.glob("*.py"))
    res = subprocess.run(
        [sys.executable, "-m", "jupytext", "--sync", *map(str, copies)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    for copy in copies:
        assert copy.read_text() == (NOTEBOOKS / copy.name).read_text(), copy.name
        paired = nbformat.read(copy.with_suffix(".ipynb"), as_version=4)
        assert len(paired.cells) == len(jupytext.read(NOTEBOOKS / copy.name).cells)


def test_explore_book_generates_and_explores_a_tiny_book(tiny_run, tmp_path):
    book = tmp_path / "book"  # empty: the notebook generates the tiny book here
    env = {"LOANRISK_CONFIG": str(tiny_run.config_path), "LOANRISK_BOOK_DIR": str(book)}
    nb = execute(NOTEBOOKS / "01-explore-book.py", env, tmp_path / "01-explore-book.ipynb")
    assert (book / "loans.parquet").exists()
    text = text_of(nb)
    assert "tables: customers, loans, repayments, crm_interactions" in text
    assert "overall default rate" in text
    assert images_of(nb) == 2  # default rate over time, relationship factors by quintile


def test_review_run_shows_the_champion_and_scores_loans(tiny_run, tmp_path):
    env = {"LOANRISK_CONFIG": str(tiny_run.config_path), "LOANRISK_N_LOANS": "4"}
    nb = execute(NOTEBOOKS / "02-review-run.py", env, tmp_path / "02-review-run.ipynb")
    text = text_of(nb)
    assert f"loanrisk@champion = version 1, run {tiny_run.run_id}" in text
    assert f"scored 4 loans with loanrisk v1 (run {tiny_run.run_id})" in text
    assert "test_auc" in text and "relationship_factors" in text and "reason_1" in text
    assert (tiny_run.root / "reports" / tiny_run.run_id / "review" / "explain").is_dir()
    # ROC, KS, gains, calibration, scores, PSI and the two SHAP figures at least.
    assert images_of(nb) >= 6
