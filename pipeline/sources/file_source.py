"""Table files: the four contract tables read from `<table>.parquet` or `<table>.csv` files.

    raw_dir/{customers,loans,repayments,crm_interactions}.{parquet,csv}   (load_tables)
        -> frames with columns converted to contract types where every value converts

A file that cannot be read is reported by name with what to do about it: a missing or empty
file, a CSV that is not UTF-8 (line and byte of the first bad byte), one saved with another
delimiter, or a Parquet file that is not one. Contract checks come after, in
`pipeline.sources.validation`.
"""

from __future__ import annotations

import codecs
import logging
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pyarrow

from pipeline.core.catalogue import TABLE_SUFFIXES, table_file
from pipeline.core.contract import TABLES
from pipeline.core.errors import DataError
from pipeline.sources import sql_source
from pipeline.sources.conversion import convert_clean
from pipeline.sources.schemas import COLUMNS

logger = logging.getLogger(__name__)

# Separators of CSV files exported by spreadsheet locales or databases; the contract is commas.
OTHER_DELIMITERS = (";", "\t", "|")


def load_tables(raw_dir: Path) -> dict[str, pd.DataFrame]:
    """Read the four contract tables from `raw_dir` (`<table>.parquet` or `<table>.csv`).

    Columns are converted to their contract types where every value converts; others are left
    as read for `validate_tables` to report. Raises DataError listing every table that is
    missing or unreadable.
    """
    raw_dir = Path(raw_dir)
    if not raw_dir.is_dir():
        raise DataError(
            f"The raw data folder {raw_dir} does not exist. Set data.raw_dir to the folder "
            f"holding {', '.join(TABLES)} ({' or '.join(TABLE_SUFFIXES)}), or create the simulated "
            f"book with `loanrisk generate --out {raw_dir}`."
        )
    tables: dict[str, pd.DataFrame] = {}
    problems: list[str] = []
    for name in TABLES:
        try:
            tables[name] = read_table(find_table_file(raw_dir, name), name)
        except DataError as exc:
            problems.append(str(exc))
    if problems:
        raise DataError("\n\n".join([f"Could not read the input tables in {raw_dir}:", *problems]))
    return tables


def read_table(source: str | Path, name: str) -> pd.DataFrame:
    """Read one table from a `.parquet` or `.csv` file; `name` is its contract table name.

    source: a file path, or a string with "://": a SQLAlchemy URL, read from the database's
        table named `name` (`_read_sql`).
    Returns the frame with columns converted to contract types where every value converts
    (timezone-aware timestamps to naive UTC). Raises DataError for a missing, empty, undecodable
    or unparseable file, naming the file.
    """
    if isinstance(source, str) and "://" in source:
        return _read_sql(source, name)
    path = Path(source)
    reader = _READERS.get(path.suffix.lower())
    if reader is None:
        raise DataError(
            f"{name}: cannot read {path}: expected a file ending in {' or '.join(TABLE_SUFFIXES)}."
        )
    if not path.exists():
        raise DataError(f"{name}: the file {path} does not exist.")
    frame = reader(path, name)
    if len(frame) == 0:
        what = "has a header but no data rows" if frame.shape[1] else "holds no rows"
        raise DataError(f"{name}: {path} {what}; the table needs at least one row.")
    return convert_clean(frame, name)


def find_table_file(raw_dir: Path, name: str) -> Path:
    """The file holding table `name` in `raw_dir`: Parquet preferred when both formats exist."""
    found = [table_file(raw_dir, name, suffix) for suffix in TABLE_SUFFIXES]
    found = [p for p in found if p.exists()]
    if not found:
        expected = " or ".join(table_file(raw_dir, name, suffix).name for suffix in TABLE_SUFFIXES)
        raise DataError(f"{name}: no table file in {raw_dir}: expected {expected}.")
    if len(found) > 1:
        logger.warning("%s: both %s exist; reading %s", name, found, found[0].name)
    return found[0]


def _read_csv(path: Path, name: str) -> pd.DataFrame:
    # Text, dates and flags are read as text and converted by the contract (`convert_clean`):
    # pandas' own guesses would turn region "01" into 1 and a bad date into an unreported object
    # column.
    as_text = {
        column: "str"
        for column, spec in COLUMNS.get(name, {}).items()
        if spec.kind in ("text", "date", "datetime", "bool")
    }
    try:
        frame = pd.read_csv(path, encoding="utf-8-sig", dtype=as_text, low_memory=False)
    except UnicodeDecodeError:
        raise DataError(_utf8_problem(path, name)) from None
    except pd.errors.EmptyDataError:
        raise DataError(f"{name}: {path} is empty (not even a header line).") from None
    except (pd.errors.ParserError, ValueError, OSError) as exc:
        raise DataError(f"{name}: {path} could not be parsed as CSV: {exc}") from None
    _check_delimiter(frame, path, name)
    return frame


def _check_delimiter(frame: pd.DataFrame, path: Path, name: str) -> None:
    """A file saved with another separator reads as one column whose name holds them all."""
    if frame.shape[1] != 1:
        return
    header = str(frame.columns[0])
    for sep in OTHER_DELIMITERS:
        if header.count(sep) >= 1 and len(header.split(sep)) > 1:
            shown = header if len(header) <= 80 else header[:77] + "..."
            raise DataError(
                f"{name}: {path} reads as a single column {shown!r}: it looks {sep!r}-separated; "
                "expected comma-separated values (re-export with ',' as the delimiter)."
            )


def _read_parquet(path: Path, name: str) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except (OSError, ValueError, pyarrow.ArrowException) as exc:
        raise DataError(f"{name}: {path} is not a readable Parquet file ({exc}).") from None


def _read_sql(url: str, name: str) -> pd.DataFrame:
    frame = sql_source.fetch_tables(url, {name: name})[name]
    return convert_clean(frame, name)


_READERS: dict[str, Callable[[Path, str], pd.DataFrame]] = {
    ".parquet": _read_parquet,
    ".csv": _read_csv,
}


def _utf8_problem(path: Path, name: str) -> str:
    where = _first_bad_utf8(path)
    if where is None:
        return f"{name}: {path} is not UTF-8 text; re-export it as UTF-8."
    line, offset, raw = where
    return (
        f"{name}: {path} is not UTF-8 text: byte(s) 0x{raw.hex().upper()} on line {line} "
        f"(byte offset {offset}) cannot be decoded. Re-export the file as UTF-8 "
        "(in Excel: 'CSV UTF-8')."
    )


def _first_bad_utf8(path: Path) -> tuple[int, int, bytes] | None:
    """(line from 1, byte offset, offending bytes) of the first invalid UTF-8 sequence, in 1 MB
    chunks so a large file is never held in memory."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = lines = 0
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as exc:
                # exc.object = bytes held back from the previous chunk (part of one character,
                # no newline) + this chunk.
                held = len(exc.object) - len(chunk)
                line = 1 + lines + exc.object[: exc.start].count(b"\n")
                return line, offset - held + exc.start, exc.object[exc.start : exc.end]
            offset += len(chunk)
            lines += chunk.count(b"\n")
    return None
