"""Installs that repeat: every dependency pinned exactly in constraints.txt, and every install
of `make setup` (which `.ci/run` goes through) uses that file."""

from __future__ import annotations

import re
import tomllib
from importlib import metadata

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.helpers import REPO

ROOT = REPO


def _pins() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        assert sep and version and not re.search(r"[<>=!~;,\s]", version), (
            f"constraints.txt: {line!r} is not an exact pin (name==version)"
        )
        pins[canonicalize_name(name)] = version
    return pins


def _requirements() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = project["dependencies"] + project["optional-dependencies"]["dev"]
    return [Requirement(r) for r in reqs]


def test_every_dependency_has_an_exact_pin_within_its_range() -> None:
    pins = _pins()
    for req in _requirements():
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} (pyproject.toml) has no pin in constraints.txt"
        assert req.specifier.contains(Version(pins[name]), prereleases=True), (
            f"constraints.txt pins {req.name}=={pins[name]}, outside pyproject's {req.specifier}"
        )


def test_installed_direct_dependencies_match_the_pins() -> None:
    pins = _pins()
    drift = {}
    for req in _requirements():
        name = canonicalize_name(req.name)
        installed = metadata.version(req.name)
        if Version(installed) != Version(pins[name]):
            drift[req.name] = (installed, pins[name])
    assert not drift, f"installed != pinned (installed, pinned): {drift}"


def test_make_setup_and_ci_install_with_the_constraints() -> None:
    makefile = (ROOT / "Makefile").read_text()
    installs = [ln for ln in makefile.splitlines() if re.search(r"pip install", ln)]
    assert installs
    for ln in installs:
        if "--upgrade pip" in ln:
            continue  # pip itself, before the constraints can be read
        assert "-c constraints.txt" in ln, f"Makefile install without constraints: {ln.strip()}"
    assert re.search(r"^\$\(STAMP\): .*constraints\.txt", makefile, re.M), (
        "the install stamp must depend on constraints.txt so a changed pin reinstalls"
    )
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install" not in ci or "-c constraints.txt" in ci
    assert re.search(r"^make (test|setup)", ci, re.M), ".ci/run must install through make"
    test_target = re.search(r"^test: (.*)$", makefile, re.M)
    assert test_target and "$(STAMP)" in test_target.group(1)
