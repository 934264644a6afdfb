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


# A stage that cannot unwind: it swallows the signal's exception and waits, as a stage does
# when every MLflow write on its way out waits for a SQLite lock the interrupted write held.
_STUCK = """
import os, signal, sys, time
import pipeline.cli as cli
cli.STOP_DEADLINE_S = {deadline}

def stage():
    try:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(5)
    except BaseException:
        print("unwinding", flush=True)
        {after}
        time.sleep(30)

cli._guarded(stage)
"""


def _stuck(tmp_path, deadline: float, after: str = "pass"):
    import subprocess
    import sys
    import time

    from tests.helpers import REPO

    script = tmp_path / "stuck.py"
    script.write_text(_STUCK.format(deadline=deadline, after=after))
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
        check=False,
    )
    return done, time.monotonic() - start


def test_a_stage_that_does_not_unwind_is_stopped_at_the_deadline(tmp_path):
    done, seconds = _stuck(tmp_path, deadline=1.0)
    assert done.returncode == 143, done.stderr
    assert "unwinding" in done.stdout
    assert "not stopped within 1 s" in done.stderr and "Traceback" not in done.stderr
    assert seconds < 20  # the stage would have waited 30 s


def test_a_second_sigterm_stops_at_once(tmp_path):
    done, seconds = _stuck(tmp_path, deadline=25.0, after="os.kill(os.getpid(), signal.SIGTERM)")
    assert done.returncode == 143, done.stderr
    assert "a second SIGTERM" in done.stderr
    assert seconds < 20  # neither the deadline nor the stage's wait


def test_the_deadline_is_cancelled_when_the_stage_ends(tmp_path):
    # in one process (a notebook, the test runner) a stage stopped by SIGTERM must not take the
    # process down later
    import signal
    import time

    import pipeline.cli as cli

    def stage():
        signal.raise_signal(signal.SIGTERM)

    deadline = cli.STOP_DEADLINE_S
    cli.STOP_DEADLINE_S = 0.2
    try:
        with pytest.raises(typer.Exit) as stopped:
            cli._guarded(stage)
    finally:
        cli.STOP_DEADLINE_S = deadline
    assert stopped.value.exit_code == 143
    time.sleep(0.5)  # still here: os._exit would have ended the test run
