"""The package's shape: dependencies point one way, and only the catalogue names files."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "pipeline"
CATALOGUE = PACKAGE / "core" / "catalogue.py"
# A file name: a stem and an artefact suffix. A bare suffix (".csv") names a format, but one
# inside an f-string builds a file name (f"{name}.csv") and counts.
FILE_NAME = re.compile(r"^.+\.(parquet|csv|json|png|html|txt)$")
SUFFIX = re.compile(r"\.(parquet|csv|json|png|html|txt)$")


def test_import_contracts_hold():
    """import-linter: the layers of pyproject.toml, and no cycle inside any subpackage
    (imports inside functions included)."""
    lint = Path(sys.executable).with_name("lint-imports")
    res = subprocess.run(
        [str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    assert "BROKEN" not in res.stdout and "0 broken" in res.stdout


def _file_names(path: Path) -> list[tuple[int, str]]:
    """String constants that name a file, outside docstrings."""
    tree = ast.parse(path.read_text())
    in_fstring = {
        id(part)
        for node in ast.walk(tree)
        if isinstance(node, ast.JoinedStr)
        for part in node.values
        if isinstance(part, ast.Constant)
    }
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    return [
        (node.lineno, node.value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
        and (FILE_NAME.search(node.value) or (id(node) in in_fstring and SUFFIX.search(node.value)))
    ]


def test_only_the_catalogue_spells_artefact_file_names():
    found = {
        f"{p.relative_to(ROOT)}:{line}": value
        for p in sorted(PACKAGE.rglob("*.py"))
        if p != CATALOGUE
        for line, value in _file_names(p)
    }
    assert not found, f"file names outside pipeline/core/catalogue.py: {found}"


def test_the_file_name_check_sees_names_in_code_and_fstrings(tmp_path):
    sample = tmp_path / "m.py"
    sample.write_text(
        '"""Writes report.html."""\n'
        'A = "metrics.json"\n'
        'FORMAT = ".csv"\n'
        'def f(n):\n    """x.csv"""\n    return f"{n}.png"\n'
    )
    assert [v for _, v in _file_names(sample)] == ["metrics.json", ".png"]
