"""SIGTERM's exit code survives an error raised while the stage unwinds from it."""

from __future__ import annotations

import pytest
import typer

from pipeline.cli import _run_guarded
from pipeline.core.errors import Terminated


def _stage_whose_cleanup_fails() -> None:
    try:
        raise Terminated("signal 15")
    except Terminated:
        # what MLflow raised on the way out when the signal had landed inside its write
        raise RuntimeError("(sqlite3.OperationalError) database is locked") from None


def _stage_with_a_bug() -> None:
    raise RuntimeError("a bug, no signal")


def test_an_error_while_stopping_still_exits_143():
    # `from None` hides the context from tracebacks, not from __context__
    with pytest.raises(typer.Exit) as stopped:
        _run_guarded(_stage_whose_cleanup_fails)
    assert stopped.value.exit_code == 143


def test_an_error_without_a_signal_is_not_taken_for_one():
    with pytest.raises((RuntimeError, typer.Exit)) as failed:
        _run_guarded(_stage_with_a_bug)
    assert getattr(failed.value, "exit_code", 1) != 143
