"""Nothing lost, nothing crossed: a stage's outputs are one set, and derived data keeps its source.

Kills are deterministic: the stage runs in a real process whose writer (or rename) sends the
signal to its own process at a chosen point, so the test does not race a timer.
"""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pandas as pd
import pytest
from minibook import random_book, write_book
from typer.testing import CliRunner

from pipeline.cli import app
from pipeline.config import Config, DataConfig, FeaturesConfig
from pipeline.core.errors import DataError
from pipeline.modelling import dataset
from pipeline.stages import features
from tests.helpers import REPO

runner = CliRunner()

# Runs `loanrisk <argv...>` after hooking a writer so that the process signals itself: "table N"
# after ingest wrote its N-th table, "rename N" after the N-th table was renamed into interim,
# "to_parquet N" after the N-th Parquet file, "duckdb N" once the N-th DuckDB connection is open.
HOOKED_CLI = textwrap.dedent(
    """
    import os, pathlib, signal, sys
    from pipeline.stages import ingest
    from pipeline.cli import app

    point, n, sig, interim = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    count = [0]

    def hit():
        count[0] += 1
        if count[0] == n:
            os.kill(os.getpid(), sig)

    if point == "to_parquet":  # killed while writing a Parquet file
        import pandas as pd
        real_to_parquet = pd.DataFrame.to_parquet
        def to_parquet(self, *args, **kwargs):
            real_to_parquet(self, *args, **kwargs)
            hit()
        pd.DataFrame.to_parquet = to_parquet
    elif point == "duckdb":  # killed while DuckDB builds the features
        import duckdb
        real_connect = duckdb.connect
        def connect(*args, **kwargs):
            con = real_connect(*args, **kwargs)
            hit()
            return con
        duckdb.connect = connect
    elif point == "table":
        real_write = ingest.write_parquet
        def write_parquet(frame, target):
            path = real_write(frame, target)
            hit()
            return path
        ingest.write_parquet = write_parquet
    else:
        real_replace = pathlib.Path.replace
        def replace(self, target):
            out = real_replace(self, target)
            target = pathlib.Path(target)
            in_interim = target.parent.resolve() == pathlib.Path(interim).resolve()
            if in_interim and target.suffix == ".parquet":
                hit()
            return out
        pathlib.Path.replace = replace
    app(sys.argv[5:], prog_name="loanrisk")
    """
)


def _book(root: Path, version: int) -> Path:
    """A small raw book (Parquet) in root/raw: the same source, new content in every table for
    each version (incomes, principals, rates and the last CRM event change)."""
    tables = random_book(seed=1).tables()
    tables["customers"]["annual_income"] += version
    tables["loans"]["principal"] += version
    tables["loans"]["interest_rate"] += version / 1000
    crm = tables["crm_interactions"]
    tables["crm_interactions"] = crm.iloc[: len(crm) - version]
    return write_book(tables, root / "raw")


def _opts(root: Path, raw: Path | None = None) -> list[str]:
    pairs = [
        f"data.raw_dir={raw or root / 'raw'}",
        f"data.interim_dir={root / 'interim'}",
        f"data.features_dir={root / 'features'}",
        "data.generate_if_missing=false",
        "features.duckdb_threads=1",
        "features.duckdb_memory_limit=1GB",
    ]
    return [x for p in pairs for x in ("-o", p)]


def _cli(*args: str):
    return runner.invoke(app, list(args))


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _hooked(root: Path, point: str, n: int, sig: int, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    if (root / "tmp").is_dir():
        env["TMPDIR"] = str(root / "tmp")
    cmd = [sys.executable, "-c", HOOKED_CLI, point, str(n), str(int(sig)), str(root / "interim")]
    return subprocess.run(
        [*cmd, *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300
    )


@pytest.fixture
def ingested(tmp_path):
    """Book 1 ingested; raw_dir then holds book 2 (same folder, new content)."""
    _book(tmp_path, version=1)
    result = _cli("ingest", *_opts(tmp_path))
    assert result.exit_code == 0, result.output
    before = _snapshot(tmp_path / "interim")
    _book(tmp_path, version=2)
    return tmp_path, before


# -- 7: a set is published whole ---------------------------------------------------------------
def test_ingest_killed_between_tables_leaves_the_previous_four(ingested):
    root, before = ingested
    killed = _hooked(root, "table", 2, signal.SIGKILL, "ingest", *_opts(root))
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert _snapshot(root / "interim") == before  # not new customers beside old loans
    leftovers = [p.name for p in (root / "interim").iterdir() if p.name.startswith(".")]
    assert leftovers  # the killed run's private folder
    assert _cli("features", *_opts(root)).exit_code == 0
    result = _cli("ingest", *_opts(root))
    assert result.exit_code == 0, result.output
    assert not [p for p in (root / "interim").iterdir() if p.name.startswith(".")]
    assert _snapshot(root / "interim") != before


def test_ingest_killed_while_renaming_is_refused_by_the_next_stage(ingested):
    root, _ = ingested
    killed = _hooked(root, "rename", 2, signal.SIGKILL, "ingest", *_opts(root))
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    result = _cli("features", *_opts(root))
    assert result.exit_code == 2, result.output
    assert "does not hold one whole set" in result.output and "loanrisk ingest" in result.output
    assert "Traceback" not in result.output
    assert not (root / "features").exists()
    assert _cli("ingest", *_opts(root)).exit_code == 0
    assert _cli("features", *_opts(root)).exit_code == 0


def test_sigterm_during_ingest_exits_143_and_says_what_is_true(ingested):
    root, before = ingested
    termed = _hooked(root, "table", 2, signal.SIGTERM, "ingest", *_opts(root))
    assert termed.returncode == 143, termed.stderr
    assert _snapshot(root / "interim") == before
    assert not [p for p in (root / "interim").iterdir() if p.name.startswith(".")]
    message = " ".join(termed.stderr.split())
    assert "terminated (SIGTERM)" in message and "each folder keeps its previous set" in message
    assert "Traceback" not in message


# -- 8: the next run removes the temporaries of a killed one ------------------------------------
def test_killed_features_leave_temporaries_the_next_run_removes(ingested, monkeypatch):
    root, _ = ingested
    system_tmp = root / "tmp"  # the temporary folder of the killed runs and of the next one
    system_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))
    assert _cli("features", *_opts(root)).exit_code == 0
    killed = _hooked(root, "duckdb", 1, signal.SIGKILL, "features", *_opts(root))
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert list(system_tmp.iterdir())  # DuckDB's spill folder
    assert _cli("features", *_opts(root)).exit_code == 0
    assert list(system_tmp.iterdir()) == []
    killed = _hooked(root, "to_parquet", 1, signal.SIGKILL, "features", *_opts(root))
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert [p.name for p in (root / "features").iterdir() if p.name.startswith(".")]
    assert _cli("features", *_opts(root)).exit_code == 0
    assert [p.name for p in (root / "features").iterdir() if p.name.startswith(".")] == []
    assert list(system_tmp.iterdir()) == []


# -- 9: a full disk or a folder we may not write is the user's to fix ---------------------------
def test_full_disk_during_ingest_is_exit_2_naming_the_folder(ingested, monkeypatch):
    root, before = ingested
    real = pd.DataFrame.to_parquet
    calls = []

    def to_parquet(self, path, *args, **kwargs):
        calls.append(path)
        if len(calls) == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, path, *args, **kwargs)

    monkeypatch.setattr(pd.DataFrame, "to_parquet", to_parquet)
    result = _cli("ingest", *_opts(root))
    assert result.exit_code == 2, result.output
    assert "No space left on device" in result.output and "internal error" not in result.output
    message = result.output.replace("\n", "")
    assert f"cannot write to {root / 'interim'}:" in message and ".ingest.loanrisk" not in message
    assert _snapshot(root / "interim") == before
    assert not [p for p in (root / "interim").iterdir() if p.name.startswith(".")]


def test_read_only_output_folder_is_exit_2_naming_it(tmp_path, monkeypatch):
    _book(tmp_path, version=1)
    real = Path.mkdir

    def mkdir(self, *args, **kwargs):
        if self == tmp_path / "interim":
            raise OSError(errno.EROFS, "Read-only file system", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", mkdir)
    result = _cli("ingest", *_opts(tmp_path))
    assert result.exit_code == 2, result.output
    assert "Read-only file system" in result.output and "internal error" not in result.output
    assert str(tmp_path / "interim") in result.output.replace("\n", "")


# -- 10: derived data is keyed by its source ----------------------------------------------------
def test_another_source_does_not_replace_derived_data_silently(tmp_path):
    book_a = _book(tmp_path / "a", version=1)
    book_b = _book(tmp_path / "b", version=2)
    assert _cli("ingest", *_opts(tmp_path, book_a)).exit_code == 0
    assert _cli("features", *_opts(tmp_path, book_a)).exit_code == 0
    before = _snapshot(tmp_path / "interim")

    refused = _cli("ingest", *_opts(tmp_path, book_b))
    assert refused.exit_code == 2, refused.output
    message = refused.output.replace("\n", " ")
    assert str(book_a) in message and str(book_b) in message
    assert "-o data.interim_dir=" in message and "-o data.features_dir=" in message
    assert "data.replace_derived=true" in message
    assert _snapshot(tmp_path / "interim") == before

    # Derived data of A is not read for a config that names B, nor B's for A.
    crossed = _cli("features", *_opts(tmp_path, book_b))
    assert crossed.exit_code == 2 and str(book_a) in crossed.output.replace("\n", "")
    with pytest.raises(DataError, match="features of"):
        dataset.load(_cfg(tmp_path, book_b))

    # Told to, ingest replaces A's tables; features then refuses to replace A's features too.
    forced = _cli("ingest", *_opts(tmp_path, book_b), "-o", "data.replace_derived=true")
    assert forced.exit_code == 0, forced.output
    assert _snapshot(tmp_path / "interim") != before
    assert _cli("features", *_opts(tmp_path, book_b)).exit_code == 2
    assert (
        _cli("features", *_opts(tmp_path, book_b), "-o", "data.replace_derived=true").exit_code == 0
    )
    assert dataset.load(_cfg(tmp_path, book_b)).frame.shape[0] > 0

    # The manifests keep the source relative to their folder: a project moved whole is still
    # the same source (no refusal).
    moved = tmp_path.with_name(tmp_path.name + "-moved")
    tmp_path.rename(moved)
    assert features.run(_cfg(moved, moved / "b" / "raw")).exists()


def _cfg(root: Path, raw: Path) -> Config:
    return Config(
        data=DataConfig(
            raw_dir=raw,
            interim_dir=root / "interim",
            features_dir=root / "features",
            generate_if_missing=False,
        ),
        features=FeaturesConfig(duckdb_threads=1, duckdb_memory_limit="1GB"),
    )
