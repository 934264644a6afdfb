"""A stage's files are published as one set: all of this run's, or all of the previous one's.

Writing the files of a set one by one into their folder lets a kill (SIGKILL, a full disk, a
crash) leave new files beside old ones: new `customers` beside old `loans`, an effect table that
disagrees with its plot. So a stage writes its set into a private folder inside the output folder
(`publish_set`) and, once every file is written, publishes it:

1. the manifest (`manifest.json`, or a stage's own name in a shared folder) with the SHA-256 of
   every file of the set, the stage's name and what the stage adds (its source, its inputs);
2. each file, by rename (atomic on one filesystem), SIGTERM and Ctrl-C held back meanwhile
   (acted on right after, so a terminated stage leaves its previous set or its whole new one);
3. files of the previous set that the new one no longer has are removed.

The manifest goes first, so a process killed between two renames leaves a manifest that the
files do not match: `read_set`, which every reading stage calls, refuses that folder with a
DataError naming the stage to re-run, instead of reading a mix. A folder without a manifest
(files put there by hand) is read as it is. Files of the folder that are not in any set are left
alone, so an output folder may hold other things.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.core import catalogue
from pipeline.core.errors import DataError
from pipeline.core.fingerprint import file_sha256, read_manifest, write_manifest
from pipeline.core.io import output_errors, owned_tempdir

# The manifest key listing the set's files and their SHA-256.
FILES = "files"
# Signals that wait while a set is being renamed into place.
_HELD = (signal.SIGTERM, signal.SIGINT)


@dataclass
class StagedSet:
    """A set being written: files go into `root` (private to this process) until published."""

    root: Path
    folder: Path
    # What the stage adds to the manifest (its source, its inputs); JSON-able.
    entries: dict[str, Any] = field(default_factory=dict)

    def path(self, name: str) -> Path:
        """Where to write the set's file `name` now."""
        return self.root / name

    def final(self, path: Path | str) -> Path:
        """Where a file written into `root` is once the set is published."""
        return self.folder / Path(path).name


@contextmanager
def publish_set(
    folder: Path | str, stage: str, manifest: str = catalogue.MANIFEST
) -> Iterator[StagedSet]:
    """Yield a StagedSet; when the block succeeds, publish every file written into its `root`
    to `folder` as one set (module docstring). On any error, or a signal, before that, `folder`
    is unchanged and the private folder is removed; one a killed process left is removed by the
    next `publish_set` of the same stage there."""
    folder = Path(folder)
    with owned_tempdir(folder, stage) as root:
        staged = StagedSet(root, folder)
        with output_errors(folder):
            yield staged
            files = {
                p.name: file_sha256(p)
                for p in sorted(root.iterdir())
                if p.is_file() and not p.name.startswith(".")
            }
            # No time stamps: re-running a stage on the same input gives byte-identical files.
            write_manifest(root, {"stage": stage, **staged.entries, FILES: files}, manifest)
            _commit(root, folder, manifest, files)


def read_set(
    folder: Path | str, manifest: str = catalogue.MANIFEST, rerun: str | None = None
) -> dict[str, Any] | None:
    """The manifest of the set published in `folder`, after checking that every file it lists is
    there with the same SHA-256; None when `folder` has no manifest. Raises DataError when a file
    is missing or differs (a stage stopped while publishing, or a file changed by hand), naming
    the command to re-run (`rerun`, default `loanrisk <stage>`)."""
    folder = Path(folder)
    entries = read_manifest(folder, manifest)
    if entries is None or FILES not in entries:  # by hand, or written before sets existed
        return entries
    bad = [
        name
        for name, sha in entries[FILES].items()
        if not (folder / name).is_file() or file_sha256(folder / name) != sha
    ]
    if bad:
        stage = entries.get("stage", "the stage")
        raise DataError(
            f"{folder} does not hold one whole set of `loanrisk {stage}` outputs: "
            f"{', '.join(bad)} {'is' if len(bad) == 1 else 'are'} missing or not the file the "
            "manifest lists (a run stopped while publishing, or a file was changed by hand). "
            f"Re-run `{rerun or f'loanrisk {stage}'}`."
        )
    return entries


def _commit(root: Path, folder: Path, manifest: str, files: dict[str, str]) -> None:
    previous = read_manifest(folder, manifest) or {}
    gone = set(previous.get(FILES) or {}) - set(files)
    with _signals_held():
        (root / manifest).replace(folder / manifest)
        for name in files:
            (root / name).replace(folder / name)
        for name in sorted(gone):
            (folder / name).unlink(missing_ok=True)


@contextmanager
def _signals_held() -> Iterator[None]:
    """SIGTERM and SIGINT wait until the renames are done (they take microseconds), so an
    interrupted stage never leaves a set half published; the signal is acted on right after.

    The Python handlers are swapped, not the thread's signal mask: the kernel hands a process
    signal to any thread that does not block it, and Python runs handlers in the main thread."""
    if threading.current_thread() is not threading.main_thread():
        yield  # handlers can only be set from the main thread; a worker's caller owns them
        return
    caught: list[int] = []
    previous = {s: signal.signal(s, lambda signum, frame: caught.append(signum)) for s in _HELD}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in caught:
            signal.raise_signal(signum)
