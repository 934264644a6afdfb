"""Every command the README shows exists as written: a user copying one gets no surprise.

`loanrisk` lines are parsed and checked against the CLI (command and every option); the cheap
ones (generate, example-data) are executed as written in a scratch folder; `make` lines are
dry-run against the Makefile; `.ci/run` runs exactly the README's test command.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from pipeline.cli import app
from tests.helpers import REPO

ROOT = REPO
README = (ROOT / "README.md").read_text()
EXECUTED = {"generate", "example-data"}


def _bash_lines() -> list[str]:
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", README, flags=re.S):
        block = re.sub(r"\\\n\s*", " ", block)  # join continued lines
        for line in block.splitlines():
            line = line.split("  #")[0].strip()
            if line and not line.startswith("#"):
                lines.append(line)
    return lines


def _loanrisk_commands() -> list[list[str]]:
    """Each README `loanrisk` line as argv; `a | b | c` lists alternatives, `[...]` options."""
    out = []
    for line in _bash_lines():
        if not line.startswith("loanrisk"):
            continue
        line = line.replace("[", "").replace("]", "")
        if " | " in line:
            head, *alts = line.split(" | ")
            first = head.split()
            out.append(first)
            out += [[first[0], *alt.split()] for alt in alts]
        else:
            out.append(shlex.split(line))
    return out


COMMANDS = _loanrisk_commands()


def test_readme_shows_the_two_commands_and_ci_runs_the_test_one() -> None:
    lines = _bash_lines()
    assert lines[:2] == ["make train", "make test"]
    ci = [ln.strip() for ln in (ROOT / ".ci/run").read_text().splitlines() if ln.strip()]
    assert ci[-1] == "make test"


@pytest.mark.parametrize("argv", COMMANDS, ids=[" ".join(a[:2]) for a in COMMANDS])
def test_each_loanrisk_command_and_option_exists(argv: list[str]) -> None:
    root = typer.main.get_command(app)
    assert argv[0] == "loanrisk"
    name = argv[1]
    assert name in root.commands, f"README shows `loanrisk {name}`, the CLI has no such command"
    command = root.commands[name]
    known = {opt for p in command.params for opt in p.opts + p.secondary_opts}
    used = [a.split("=")[0] for a in argv[2:] if a.startswith("-")]
    unknown = [u for u in used if u not in known]
    assert not unknown, f"`loanrisk {name}` has no option {unknown}"


def test_readme_lists_at_least_the_stages() -> None:
    shown = {argv[1] for argv in COMMANDS}
    assert {"generate", "ingest", "features", "train", "evaluate", "explain", "run", "score"} <= (
        shown
    )


@pytest.mark.parametrize(
    "argv",
    [a for a in COMMANDS if a[1] in EXECUTED],
    ids=[" ".join(a[:2]) for a in COMMANDS if a[1] in EXECUTED],
)
def test_cheap_commands_run_as_written(argv: list[str], tmp_path: Path) -> None:
    argv = list(argv)
    if "--size" in argv:  # the default book takes seconds; the tiny one proves the same line
        argv[argv.index("--size") + 1] = "tiny"
    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        result = CliRunner().invoke(app, argv[1:])
    finally:
        os.chdir(cwd)
    assert result.exit_code == 0, result.output
    outs = [argv[i + 1] for i, a in enumerate(argv) if a == "--out"]
    for out in outs:
        assert (tmp_path / out).exists()


@pytest.mark.parametrize(
    "target", sorted({ln.split()[1] for ln in _bash_lines() if ln.startswith("make ")})
)
def test_each_make_target_exists(target: str) -> None:
    result = subprocess.run(
        ["make", "-n", target], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def _package_map() -> dict[str, set[str]]:
    """The README's package map: {subpackage: modules named in its row}."""
    section = README.split("### The package map", 1)[1].split("\n\n", 3)[2]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        package = re.fullmatch(r"`(\w+)/`", cells[0])
        if package:
            rows[package.group(1)] = set(re.findall(r"`(\w+)`", cells[1]))
    return rows


def test_the_package_map_matches_the_tree() -> None:
    tree = {
        folder.name: {p.stem for p in folder.glob("*.py") if p.stem != "__init__"}
        for folder in sorted((ROOT / "pipeline").iterdir())
        if (folder / "__init__.py").exists()
    }
    assert _package_map() == tree
    top = {p.name for p in (ROOT / "pipeline").glob("*.py") if p.stem != "__init__"}
    assert top == {"cli.py", "runner.py"}
