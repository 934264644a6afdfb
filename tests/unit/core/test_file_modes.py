"""Files written through the temporary-then-rename writer get the mode the umask gives any new
file (0644 under the usual 022), not mkstemp's 0600: a colleague or a scheduler can read them."""

from __future__ import annotations

import os
import stat

import pandas as pd
import pytest

from pipeline.core.io import atomic_path, current_umask, write_json, write_parquet


@pytest.fixture
def umask():
    old = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(old)


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_written_files_follow_the_umask(tmp_path, umask, mask, mode):
    umask(mask)
    assert current_umask() == mask
    paths = [
        write_parquet(pd.DataFrame({"a": [1]}), tmp_path / "scores.parquet"),
        write_json({"a": 1}, tmp_path / "manifest.json"),
    ]
    with atomic_path(tmp_path / "raw.bin") as tmp:
        tmp.write_bytes(b"x")
    for path in [*paths, tmp_path / "raw.bin"]:
        assert stat.S_IMODE(path.stat().st_mode) == mode, path.name
