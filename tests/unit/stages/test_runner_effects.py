"""`loanrisk run` runs the effect study; a book the study cannot use keeps the run going."""

from __future__ import annotations

import pytest

from pipeline import runner
from pipeline.config import Config
from pipeline.core.errors import DataError


def test_a_data_error_of_the_study_is_a_warning_not_a_failed_run(monkeypatch):
    def refuse(cfg):
        raise DataError("no labelled snapshot to study: the book is shorter than the window")

    monkeypatch.setattr(runner.effects, "run", refuse)
    assert "effect study skipped: no labelled snapshot" in runner.run_effects(Config())


def test_any_other_error_of_the_study_still_fails_the_run(monkeypatch):
    def crash(cfg):
        raise RuntimeError("bug")

    monkeypatch.setattr(runner.effects, "run", crash)
    with pytest.raises(RuntimeError):
        runner.run_effects(Config())
