"""File output that is never left half written: write to a temporary file, then rename."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd


@contextmanager
def atomic_path(target: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside `target`; rename it onto `target` only if the block succeeds.

    The temporary file lives in the target's folder so the final rename is atomic on one
    filesystem; a crash leaves the previous `target` untouched and no partial file under its name.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        tmp_path.replace(target)
    finally:
        tmp_path.unlink(missing_ok=True)


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
