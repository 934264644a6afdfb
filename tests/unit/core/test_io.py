"""Atomic writes: stale temporaries of killed processes are cleaned, a full disk or an
unwritable folder is a user error naming the folder."""

from __future__ import annotations

import errno
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from pipeline.core.errors import OutputError
from pipeline.core.io import atomic_path, output_errors, write_parquet
from tests.helpers import REPO

# A process that starts writing `target` through atomic_path, then dies (SIGKILL: no clean-up
# runs) or, with "wait", says so and sleeps while its temporary is open.
WRITER = textwrap.dedent(
    """
    import os, signal, sys, time
    from pipeline.core.io import atomic_path
    with atomic_path(sys.argv[1]) as tmp:
        tmp.write_bytes(b"half written")
        if sys.argv[2] == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        print("writing", flush=True)
        time.sleep(120)
    """
)


def _writer(target: Path, mode: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(target), mode],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )


def _temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def test_next_write_removes_temporaries_of_killed_writers_only(tmp_path):
    target = tmp_path / "scores.parquet"
    killed = _writer(target, "kill")
    killed.wait(timeout=60)
    assert killed.returncode == -signal.SIGKILL
    left = _temporaries(tmp_path)
    assert len(left) == 1 and left[0].startswith(".scores.parquet.")
    alive = _writer(target, "wait")
    try:
        assert alive.stdout.readline().strip() == "writing"
        live = set(_temporaries(tmp_path)) - set(left)
        other = tmp_path / ".scores.parquet.not-ours.tmp"  # not named by loanrisk: not touched
        other.write_bytes(b"")
        write_parquet(pd.DataFrame({"a": [1]}), target)
        assert left[0] not in _temporaries(tmp_path)  # the killed writer's: removed
        assert live <= set(_temporaries(tmp_path))  # the live writer's: kept
        assert other.exists()
        assert pd.read_parquet(target)["a"].tolist() == [1]
    finally:
        alive.kill()
        alive.wait(timeout=30)


def test_full_disk_is_an_output_error_naming_the_folder(tmp_path):
    target = tmp_path / "out" / "table.parquet"
    write_parquet(pd.DataFrame({"a": [1]}), target)
    with pytest.raises(OutputError, match=str(target.parent)) as info, atomic_path(target) as tmp:
        tmp.write_bytes(b"part")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert "No space left on device" in str(info.value)
    assert pd.read_parquet(target)["a"].tolist() == [1]  # the previous file, whole
    assert _temporaries(target.parent) == []


def test_only_errors_about_the_output_folder_are_converted(tmp_path):
    elsewhere = tmp_path / "input" / "customers.csv"
    with pytest.raises(PermissionError), output_errors(tmp_path / "out"):
        raise PermissionError(errno.EACCES, "Permission denied", str(elsewhere))
    with pytest.raises(OutputError, match="Read-only file system"), output_errors(tmp_path / "out"):
        raise OSError(errno.EROFS, "Read-only file system", str(tmp_path / "out" / "x.csv"))
