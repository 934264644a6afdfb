"""The bad-input corpus (`tests/data/bad/`) through the real CLI: exit code 2, one clear message
naming the file, column or key and what was expected, and no traceback unless --debug.

Each case folder holds only what is broken: table files replace those of the valid book in
`tests/data/good/`, `table.csv` is a prepared modelling table (data.kind: table), `config.yaml`
a config file. The command and the words the message must contain are listed below.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.core.contract import TABLES
from tests.helpers import REPO

DATA = REPO / "tests" / "data"
GOOD, BAD = DATA / "good", DATA / "bad"
runner = CliRunner()


@dataclass(frozen=True)
class Case:
    command: str  # ingest | train_table | score | score_model | config
    expect: tuple[str, ...]  # substrings of the message (file, column or key, expectation)


CASES = {
    "missing_column": Case("ingest", ("customers", "missing required column", "region")),
    "wrong_type": Case("ingest", ("loans.principal", "a number", "'ten thousand'")),
    "unparseable_dates": Case("ingest", ("loans.origination_date", "date", "'31/03/2021'")),
    "duplicate_keys": Case(
        "ingest", ("customers.customer_id", "unique", "row 3: 3; row 5: 3", "1 problem")
    ),
    "orphan_foreign_key": Case("ingest", ("loans.customer_id", "exists in customers", "999")),
    "implausible_amount": Case(
        "ingest", ("loans.principal", "<= 1,000,000,000,000", "row 2: 1e+300", "1 of 5 rows")
    ),
    "negative_amount": Case("ingest", ("repayments.amount_due", ">= 0", "-3366.67")),
    "paid_years_before_due": Case("ingest", ("repayments.paid_date", "365 days", "2018-03-13")),
    "events_after_as_of": Case(
        "score", ("crm_interactions.timestamp", "after the as-of date 2022-06-01", "2030-01-01")
    ),
    "unknown_crm_type": Case(
        "ingest",
        ("crm_interactions.type", "row 2: 'collections_call'", "complaint, payment_reminder"),
    ),
    "empty_file": Case("ingest", ("customers.csv", "empty")),
    "header_only": Case("ingest", ("loans.csv", "header but no data rows")),
    "wrong_delimiter": Case("ingest", ("customers.csv", "';'", "comma")),
    "non_utf8": Case("ingest", ("customers.csv", "not UTF-8", "0xE9", "line 4")),
    "zero_byte_parquet": Case("ingest", ("repayments.parquet", "not a readable Parquet file")),
    "nan_target": Case(
        "train_table", ("table.csv", "'defaulted'", "0/1", "2 of 40 rows", "row 7: missing")
    ),
    "single_class_target": Case("train_table", ("table.csv", "single class", "both")),
    "config_typo": Case("config", ("config.yaml", "train.n_trails", "unknown key")),
    "missing_model": Case("score_model", ("models:/no_such_model@champion",)),
}


def test_every_corpus_folder_has_a_case() -> None:
    assert sorted(p.name for p in BAD.iterdir() if p.is_dir()) == sorted(CASES)


def _raw_book(case: Path, target: Path) -> Path:
    """The valid CSV book with the case's table files put in place of the good ones."""
    target.mkdir(parents=True)
    for f in GOOD.glob("*.csv"):
        shutil.copy(f, target / f.name)
    for f in case.iterdir():
        if f.stem in TABLES:
            for old in target.glob(f"{f.stem}.*"):
                old.unlink()
            shutil.copy(f, target / f.name)
    return target


def _args(name: str, tmp: Path, model: tuple[str, str] | None) -> list[str]:
    case, folder = CASES[name], BAD / name
    store = ["-o", f"mlflow.tracking_uri=sqlite:///{tmp / 'mlruns.db'}"]
    store += ["-o", f"mlflow.artifact_location={tmp / 'mlartifacts'}"]
    out = ["-o", f"output.reports_dir={tmp / 'reports'}"]
    if case.command == "ingest":
        raw = _raw_book(folder, tmp / "raw")
        return ["ingest", "-o", f"data.raw_dir={raw}", "-o", f"data.interim_dir={tmp / 'i'}"]
    if case.command == "train_table":
        table = ["-o", "data.kind=table", "-o", f"data.path={folder / 'table.csv'}"]
        table += ["-o", "data.target=defaulted", "-o", "data.id=loan_id"]
        return ["train", *table, *store, *out, "-o", "train.n_trials=1", "-o", "train.n_jobs=1"]
    if case.command == "config":
        return ["ingest", "--config", str(folder / "config.yaml")]
    raw = _raw_book(folder, tmp / "raw")
    score = ["score", "--input", str(raw), "--out", str(tmp / "scores.parquet")]
    if case.command == "score_model":
        return [*score, "--model", "models:/no_such_model@champion", *store]
    assert model is not None
    model_uri, tracking_uri = model
    return [*score, "--as-of", "2022-06-01", "--model", model_uri, "-o", tracking_uri]


@pytest.fixture
def model(request) -> tuple[str, str] | None:
    """(model URI, tracking override) of the tiny logged model, for the cases that score."""
    if CASES[request.node.callspec.params["name"]].command != "score":
        return None
    info, _, tracking_uri = request.getfixturevalue("logged")
    return info.model_uri, f"mlflow.tracking_uri={tracking_uri}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_bad_input_gives_exit_2_and_a_clear_message(name: str, tmp_path: Path, model) -> None:
    result = runner.invoke(app, _args(name, tmp_path, model))
    output = result.output
    assert result.exit_code == 2, output
    assert "Traceback" not in output
    assert "error:" in output, output
    message = output.split("error:", 1)[1]
    flat = " ".join(message.split())
    for word in CASES[name].expect:
        assert word in flat, f"{word!r} not in:\n{output}"
    assert len(message) < 1500, "the message should be a paragraph, not a dump"
    _no_outputs_written(tmp_path)


def _no_outputs_written(tmp: Path) -> None:
    for folder in ("i", "reports"):
        assert not any((tmp / folder).glob("*")), f"{folder} written despite the error"
    assert not (tmp / "scores.parquet").exists()


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    args = _args("wrong_type", tmp_path, None)
    root = REPO
    env = {**os.environ, "PYTHONPATH": str(root), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "pipeline.cli"]
    plain = subprocess.run([*cmd, *args], capture_output=True, text=True, env=env, cwd=root)
    debug = subprocess.run(
        [*cmd, "--debug", *args], capture_output=True, text=True, env=env, cwd=root
    )
    assert plain.returncode == 2 and "Traceback" not in plain.stderr
    assert debug.returncode != 0
    assert "Traceback" in debug.stderr and "DataError" in debug.stderr
    assert "loans.principal" in debug.stderr
