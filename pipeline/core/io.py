"""File output that is never left half written: write to a temporary file, then rename.

Temporary files and folders are named `.<name>.loanrisk-<pid>@<host>-<random>.tmp`, so a later
run recognises the ones a killed process left (SIGKILL runs no clean-up) and removes them,
without touching the temporaries of a process still writing or of anything else. A full disk or
a folder we may not write becomes an `OutputError` (exit code 2) naming the folder.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import re
import shutil
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from pipeline.core.errors import OUTPUT_ERRNOS, OutputError

TEMP_SUFFIX = ".tmp"
# The writing host, shortened: on a folder shared between machines a process id means nothing
# on another host, so only this host's temporaries are ever judged stale.
HOST_TAG = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]
_TEMP_NAME = re.compile(r"^\.(?P<name>.+)\.loanrisk-(?P<pid>\d+)@(?P<host>[0-9a-f]{6})-[^.]*\.tmp$")


def temp_prefix(name: str) -> str:
    """The start of this process's temporary names for `name` (mkstemp/mkdtemp add the rest)."""
    return f".{name}.loanrisk-{os.getpid()}@{HOST_TAG}-"


def remove_stale_temporaries(folder: Path | str, name: str) -> list[Path]:
    """Remove the temporaries for `name` in `folder` that a process of this host left when it
    died; return them. Those of a live process (or another host) are kept."""
    folder = Path(folder)
    removed = []
    for path in folder.glob(f".{glob.escape(name)}.loanrisk-*{TEMP_SUFFIX}"):
        m = _TEMP_NAME.match(path.name)
        if not m or m["name"] != name or m["host"] != HOST_TAG or _alive(int(m["pid"])):
            continue
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: existence check only
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, another user's
        return True
    return True


@contextmanager
def output_errors(folder: Path | str) -> Iterator[None]:
    """Turn a full disk or an unwritable `folder` into an OutputError naming it.

    Only errors about `folder` (or a file in it, or a parent that could not be created) are
    converted: an unreadable input file raised inside the block keeps its own error.
    """
    folder = Path(folder)
    try:
        yield
    except OSError as exc:
        if exc.errno not in OUTPUT_ERRNOS or not _concerns(exc, folder):
            raise
        reason = exc.strerror or str(exc)
        # A set's private folder is an implementation detail: name the folder the user chose.
        shown = folder.parent if _TEMP_NAME.match(folder.name) else folder
        raise OutputError(
            f"cannot write to {shown}: {reason}. Nothing there was half written; free some "
            "space, make the folder writable, or point this output at another folder."
        ) from exc


def _concerns(exc: OSError, folder: Path) -> bool:
    """True when `exc` is about `folder`: no file name (a write() on a full disk), a path
    inside it, or one of its parents."""
    if exc.filename is None:
        return True
    names = [exc.filename] + ([exc.filename2] if exc.filename2 else [])
    target = folder.absolute()
    for name in names:
        path = Path(os.fsdecode(name)).absolute()
        if path == target or target in path.parents or path in target.parents:
            return True
    return False


def current_umask() -> int:
    """The process's umask, read without changing it where the system allows (Linux
    /proc/self/status); elsewhere set and restored at once (os.umask has no read-only form)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextmanager
def atomic_path(target: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it onto `target` only if the block succeeds.

    The temporary file lives in the target's folder so the final rename is atomic on one
    filesystem; a crash leaves the previous `target` untouched and no partial file under its name.
    Stale temporaries of `target` left by a killed process are removed first.
    """
    target = Path(target)
    with output_errors(target.parent):
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(target.parent, target.name)
        fd, tmp = tempfile.mkstemp(
            prefix=temp_prefix(target.name), suffix=TEMP_SUFFIX, dir=target.parent
        )
        # mkstemp makes the file 0600, and the rename keeps that: give it the mode any new file
        # gets here, so a colleague or a scheduler can read scores as the umask allows.
        os.fchmod(fd, 0o666 & ~current_umask())
        os.close(fd)
    tmp_path = Path(tmp)
    try:
        with output_errors(target.parent):
            yield tmp_path
            tmp_path.replace(target)
    finally:
        tmp_path.unlink(missing_ok=True)


@contextmanager
def owned_tempdir(parent: Path | str, name: str) -> Iterator[Path]:
    """A private folder `parent/.<name>.loanrisk-<pid>@<host>-<random>.tmp`, removed on exit;
    the ones killed processes left for `name` are removed first."""
    parent = Path(parent)
    with output_errors(parent):
        parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(parent, name)
        root = Path(tempfile.mkdtemp(prefix=temp_prefix(name), suffix=TEMP_SUFFIX, dir=parent))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def write_parquet(df: pd.DataFrame, target: Path | str) -> Path:
    with atomic_path(target) as tmp:
        df.to_parquet(tmp, index=False)
    return Path(target)


def write_csv(df: pd.DataFrame, target: Path | str) -> Path:
    """`df` as CSV, safe to open in a spreadsheet (`spreadsheet_safe`); missing cells empty."""
    with atomic_path(target) as tmp:
        append_csv(df, tmp, header=True)
    return Path(target)


def append_csv(df: pd.DataFrame, path: Path, header: bool) -> None:
    """Write (header=True) or append `df` to the CSV file `path`, as `write_csv` does: for
    writers that stream chunks into one temporary file of their own."""
    spreadsheet_safe(df).to_csv(path, mode="w" if header else "a", header=header, index=False)


def write_json(obj: Any, target: Path | str) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, default=str))
    return Path(target)


def write_text(text: str, target: Path | str) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_text(text)
    return Path(target)


# A text cell starting with one of these is run as a formula by spreadsheet programs (OWASP
# "CSV injection"): an id or a reason code like "=HYPERLINK(...)" from an input file would be.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
ESCAPE = "'"


def spreadsheet_safe(df: pd.DataFrame) -> pd.DataFrame:
    """`df` with every text cell that starts with a formula trigger prefixed by a single quote
    (OWASP's advice: spreadsheets show the quote-prefixed cell as text, and `spreadsheet_text`
    undoes it). Only text cells: numbers keep their sign and stay numbers, so -0.5 is written
    as -0.5. Missing values stay missing (written as empty cells, never as "nan"). Line breaks
    inside text are written as "\\n"."""
    escaped = {}
    for column in df.columns:
        s = df[column]
        if isinstance(s.dtype, pd.CategoricalDtype):
            s = s.astype(object)
        textual = isinstance(s.dtype, pd.StringDtype)
        if pd.api.types.is_object_dtype(s.dtype):
            # all text (an id or reason column taken out as a numpy array): the fast path
            textual = pd.api.types.infer_dtype(s, skipna=True) in ("string", "empty")
        if textual:
            is_text = s.notna()
        elif pd.api.types.is_object_dtype(s.dtype):
            # object columns may mix text with numbers: only str cells are text
            is_text = pd.Series([isinstance(v, str) for v in s], index=s.index, dtype=bool)
        else:
            continue
        if not is_text.any():
            continue
        text = s[is_text].astype("str")
        # Python 3.11's csv writer quotes a cell holding "\n" but not one holding a lone "\r",
        # which readers then take for the end of the row: write every line break as "\n".
        breaks = text.str.contains("\r", regex=False)
        if breaks.any():
            text = text.str.replace("\r\n", "\n", regex=False).str.replace("\r", "\n", regex=False)
        risky = s[is_text].astype("str").str.startswith(FORMULA_TRIGGERS)
        if risky.any() or breaks.any():
            text = text.mask(risky, ESCAPE + text)
            escaped[column] = s.astype(object).mask(is_text, text.astype(object))
    return df.assign(**escaped) if escaped else df


def spreadsheet_text(s: pd.Series) -> pd.Series:
    """Text read back from a CSV `write_csv` wrote: the escaping quote of `spreadsheet_safe`
    removed (ids read from an earlier output must match the ids scored now)."""
    if not (isinstance(s.dtype, pd.StringDtype) or pd.api.types.is_object_dtype(s.dtype)):
        return s
    text = s.astype("str")
    # "\n": a leading "\r", written as a line break
    quoted = text.str.startswith(tuple(ESCAPE + t for t in (*FORMULA_TRIGGERS, "\n")))
    quoted = quoted.fillna(False)
    return s.mask(quoted.astype(bool), text.str[1:]) if quoted.any() else s
