"""Sets of files published whole: the previous set or the new one, never a mix."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest

from pipeline.core.errors import DataError
from pipeline.core.publish import publish_set, read_set


def _publish(folder: Path, files: dict[str, str], **entries) -> None:
    with publish_set(folder, "ingest") as out:
        for name, text in files.items():
            out.path(name).write_text(text)
        out.entries.update(entries)


def _visible(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in folder.iterdir() if not p.name.startswith(".")}


def test_publishes_the_set_with_its_manifest_and_drops_files_it_no_longer_has(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")  # not part of any set: left alone
    _publish(tmp_path, {"a.csv": "1", "b.csv": "1"}, source={"kind": "files", "path": "../raw"})
    manifest = read_set(tmp_path)
    assert manifest["stage"] == "ingest" and set(manifest["files"]) == {"a.csv", "b.csv"}
    assert manifest["source"] == {"kind": "files", "path": "../raw"}
    first = (tmp_path / "manifest.json").read_bytes()
    _publish(tmp_path, {"a.csv": "1", "b.csv": "1"}, source={"kind": "files", "path": "../raw"})
    assert (tmp_path / "manifest.json").read_bytes() == first  # no time stamps
    _publish(tmp_path, {"a.csv": "2"})
    assert {k: v for k, v in _visible(tmp_path).items() if k != "manifest.json"} == {
        "a.csv": "2",
        "notes.txt": "mine",
    }
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_failure_before_publishing_leaves_the_previous_set(tmp_path):
    _publish(tmp_path, {"a.csv": "1", "b.csv": "1"})
    before = _visible(tmp_path)
    with pytest.raises(RuntimeError), publish_set(tmp_path, "ingest") as out:
        out.path("a.csv").write_text("2")
        raise RuntimeError("killed between two tables")
    assert _visible(tmp_path) == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_read_set_refuses_a_mix_and_names_the_stage_to_rerun(tmp_path):
    assert read_set(tmp_path) is None  # no manifest: files put there by hand are read as is
    _publish(tmp_path, {"a.csv": "1", "b.csv": "1"})
    (tmp_path / "b.csv").write_text("from another run")
    with pytest.raises(DataError, match=r"b\.csv is missing or not the file.*`loanrisk ingest`"):
        read_set(tmp_path)
    (tmp_path / "a.csv").unlink()
    with pytest.raises(DataError, match=r"a\.csv, b\.csv are missing.*--run-id x"):
        read_set(tmp_path, rerun="loanrisk explain --run-id x")
    (tmp_path / "manifest.json").write_bytes(b"")  # renamed, content lost in a power cut
    with pytest.raises(DataError, match="not a readable manifest"):
        read_set(tmp_path)


def test_sigterm_while_publishing_waits_until_the_set_is_whole(tmp_path, monkeypatch):
    """A signal arriving between two renames acts after the last one: the new set is whole."""
    _publish(tmp_path, {"a.csv": "1", "b.csv": "1"})
    real = Path.replace
    sent = []

    def replace(self, target):
        out = real(self, target)
        if Path(target).parent == tmp_path and not sent:
            sent.append(target)
            os.kill(os.getpid(), signal.SIGTERM)
        return out

    def stop(signum, frame):
        raise KeyboardInterrupt("terminated")

    previous = signal.signal(signal.SIGTERM, stop)
    monkeypatch.setattr(Path, "replace", replace)
    try:
        with pytest.raises(KeyboardInterrupt):
            _publish(tmp_path, {"a.csv": "2", "b.csv": "2"})
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert sent  # the signal came during the renames
    assert _visible(tmp_path)["a.csv"] == _visible(tmp_path)["b.csv"] == "2"
    assert json.loads((tmp_path / "manifest.json").read_text())["files"]
    assert read_set(tmp_path) is not None
