"""Ingest: read the four raw tables, check them against the data contract, write them as Parquet.

    raw_dir/{customers,loans,repayments,crm_interactions}.{parquet,csv}   (load_tables)
    or a database: data.sql (url + table or query per table)              (load_sql_tables)
        -> validate_tables -> interim_dir/<table>.parquet

Validation has two steps, both vectorised (no Python loop over rows):
1. conversion: every contract column becomes its contract type (ids stay int64 or text as read;
   dates become naive UTC datetime64[us]). Values that do not convert are reported here, because
   pandera's own coercion reports some failures without the value or row.
2. pandera (`pipeline.schemas`, lazy): missing values, keys, ranges, allowed values, foreign keys
   and date order, on the converted frames.
All problems of all tables are collected and raised together as one `DataError`, one paragraph
per problem, naming table, column, expectation, number of failing rows and up to five examples.
Rows are numbered from 1 at the first data row (in a CSV, row N is on line N + 1).
"""

from __future__ import annotations

import codecs
import logging
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow

from pipeline.config import Config, DataConfig, SqlSourceConfig
from pipeline.core.contract import CRM_TYPES, KEYS, REQUIRED, TABLES
from pipeline.core.errors import DataError
from pipeline.core.fingerprint import file_sha256, frame_sha256, write_manifest
from pipeline.core.io import write_parquet
from pipeline.sources.schemas import (
    COLUMNS,
    KIND_TEXT,
    Kind,
    Parents,
    SchemaErrors,
    build_schema,
    contract_columns,
    describe_check,
)

logger = logging.getLogger(__name__)

# File formats by suffix, in order of preference when a table exists in several.
SUFFIXES = (".parquet", ".csv")
N_EXAMPLES = 5
TRUE_TEXT = ("true", "t", "yes", "y", "1")
FALSE_TEXT = ("false", "f", "no", "n", "0")
DIRECTIONS = ("inbound", "outbound")
# Separators of CSV files exported by spreadsheet locales or databases; the contract is commas.
OTHER_DELIMITERS = (";", "\t", "|")
ROWS_NOTE = (
    "Rows are numbered from 1 at the first data row (in a CSV file, row N is on line N + 1)."
)

# Failures of unusual column contents inside pandas/pyarrow conversions.
_CONVERSION_ERRORS = (TypeError, ValueError, OverflowError, pyarrow.ArrowException)


def run(cfg: Config) -> dict[str, Path]:
    """Load, validate and write the four tables; return {table: interim Parquet path}.

    Writes are atomic (`pipeline.io.write_parquet`), so a failed run leaves earlier files whole.
    Raises DataError when a table is missing, unreadable or breaks the contract; nothing is
    written then.
    """
    if cfg.data.kind != "tables":
        logger.info("data.kind is %r: no raw tables to ingest", cfg.data.kind)
        return {}
    tables = validate_tables(load_source(cfg.data))
    paths: dict[str, Path] = {}
    manifest: dict[str, dict[str, object]] = {}
    for name, frame in tables.items():
        paths[name] = write_parquet(frame, Path(cfg.data.interim_dir) / f"{name}.parquet")
        manifest[name] = {
            "rows": len(frame),
            "columns": list(frame.columns),
            "content_sha256": frame_sha256(frame),
            "file_sha256": file_sha256(paths[name]),
        }
        logger.info(
            "ingest %s: %s rows x %d columns -> %s",
            name,
            f"{len(frame):,}",
            frame.shape[1],
            paths[name],
        )
    write_manifest(cfg.data.interim_dir, {"stage": "ingest", "tables": manifest})
    return paths


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
            f"holding {', '.join(TABLES)} (.parquet or .csv), or create the simulated book with "
            f"`loanrisk generate --out {raw_dir}`."
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


def load_source(data: DataConfig) -> dict[str, pd.DataFrame]:
    """The four tables from where the config says: the database of data.sql when set, else the
    files in data.raw_dir. Not yet validated (see `validate_tables`)."""
    if data.sql is not None:
        return load_sql_tables(data.sql)
    return load_tables(data.raw_dir)


def load_sql_tables(sql: SqlSourceConfig) -> dict[str, pd.DataFrame]:
    """Read the four contract tables from the database of `sql` (see `pipeline.sql_source`).

    Same result as `load_tables` for the same data: columns converted to contract types where
    every value converts. Raises DataError listing every table that cannot be read, with the
    URL's password hidden.
    """
    from pipeline.sources import sql_source

    sources = {name: sql.source_for(name) for name in TABLES}
    raw = sql_source.fetch_tables(sql.resolved_url(), sources, sql.chunk_rows)
    return {name: _convert_clean(frame, name) for name, frame in raw.items()}


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
            f"{name}: cannot read {path}: expected a file ending in {' or '.join(SUFFIXES)}."
        )
    if not path.exists():
        raise DataError(f"{name}: the file {path} does not exist.")
    frame = reader(path, name)
    if len(frame) == 0:
        what = "has a header but no data rows" if frame.shape[1] else "holds no rows"
        raise DataError(f"{name}: {path} {what}; the table needs at least one row.")
    return _convert_clean(frame, name)


def validate_tables(tables: Mapping[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Check the four tables against the data contract; return them converted and trimmed.

    tables: {table name: frame}, any index, columns as read (text, numbers or dates).
    Returns {table: frame} in contract order, RangeIndex, contract columns only (required,
    then optional and sensitive ones present; others dropped with a warning), typed: ids int64
    or str, whole numbers int64 (Int64 where missing values are allowed), amounts float64,
    dates datetime64[us] (naive UTC; calendar dates at midnight), flags boolean, text str.
    Raises DataError with one paragraph per problem across all tables.
    """
    problems: list[str] = []
    for extra in sorted(set(tables) - set(TABLES)):
        logger.warning("ignoring table %r: not one of %s", extra, ", ".join(TABLES))
    frames: dict[str, pd.DataFrame] = {}
    failed: dict[str, set[str]] = {}
    for name in TABLES:
        if name not in tables:
            problems.append(f"{name}: the table is missing (expected one of {', '.join(TABLES)}).")
            continue
        prepared = _prepare(name, tables[name], problems)
        if prepared is not None:
            frames[name], failed[name] = prepared
    for name, frame in frames.items():
        parents = _parents_for(name, frames, failed, problems)
        problems.extend(_check_values(name, frame, parents, failed[name]))
        _warn_unusual(name, frame, failed[name])
    if problems:
        header = f"The input tables break the data contract ({_plural(len(problems), 'problem')})."
        raise DataError("\n\n".join([f"{header} {ROWS_NOTE}", *problems]))
    return {name: _finalise(name, frames[name]) for name in TABLES}


def find_table_file(raw_dir: Path, name: str) -> Path:
    """The file holding table `name` in `raw_dir`: Parquet preferred when both formats exist."""
    found = [raw_dir / f"{name}{suffix}" for suffix in SUFFIXES]
    found = [p for p in found if p.exists()]
    if not found:
        expected = " or ".join(f"{name}{suffix}" for suffix in SUFFIXES)
        raise DataError(f"{name}: no table file in {raw_dir}: expected {expected}.")
    if len(found) > 1:
        logger.warning("%s: both %s exist; reading %s", name, found, found[0].name)
    return found[0]


# --- reading ---------------------------------------------------------------------------------


def _read_csv(path: Path, name: str) -> pd.DataFrame:
    # Text, dates and flags are read as text and converted by the contract (`_convert`): pandas'
    # own guesses would turn region "01" into 1 and a bad date into an unreported object column.
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
    from pipeline.sources import sql_source

    frame = sql_source.fetch_tables(url, {name: name})[name]
    return _convert_clean(frame, name)


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


# --- conversion ------------------------------------------------------------------------------


def _convert_clean(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """Convert each contract column whose values all convert; leave the others as read."""
    specs = COLUMNS.get(name, {})
    converted = {}
    for column in frame.columns:
        if isinstance(column, str) and column in specs:
            values, bad = _convert(frame[column], specs[column].kind)
            if not bad.any():
                converted[column] = values
    return frame.assign(**converted) if converted else frame


def _convert(s: pd.Series, kind: Kind) -> tuple[pd.Series, pd.Series]:
    """(s as `kind`, mask of values present in `s` that did not convert), both indexed like s.

    Converters return a missing value for anything they cannot read, so "missing after but not
    before" is exactly the set of unreadable values.
    """
    if isinstance(s.dtype, pd.CategoricalDtype):
        s = s.astype(object)
    missing = _is_missing(s)
    try:
        values = _CONVERTERS[kind](s)
    except _CONVERSION_ERRORS:
        # Mixed objects pandas cannot convert as a column: every present value is unreadable.
        return s, ~missing
    return values, values.isna() & ~missing


def _is_missing(s: pd.Series) -> pd.Series:
    """Missing values: NA/NaN/NaT, and blank text."""
    missing = s.isna()
    if pd.api.types.is_object_dtype(s.dtype) or isinstance(s.dtype, pd.StringDtype):
        blank = _text(s).str.strip().eq("")
        missing = missing | blank.fillna(False).astype(bool)
    return missing


def _text(s: pd.Series) -> pd.Series:
    return s if isinstance(s.dtype, pd.StringDtype) else s.astype("str")


def _to_float(s: pd.Series) -> pd.Series:
    dtype = s.dtype
    if pd.api.types.is_bool_dtype(dtype) or not _is_textlike_or_number(dtype):
        return pd.Series(np.nan, index=s.index)
    if pd.api.types.is_numeric_dtype(dtype):
        return pd.Series(s.to_numpy(dtype="float64", na_value=np.nan), index=s.index)
    return pd.to_numeric(_text(s).str.strip(), errors="coerce").astype("float64")


def _to_int(s: pd.Series) -> pd.Series:
    dtype = s.dtype
    if pd.api.types.is_integer_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
        return s.astype("Int64")
    f = _to_float(s)
    # Whole numbers within float precision only: 2.5 or 1e300 as a count is unreadable.
    whole = np.isfinite(f) & (f == np.floor(f)) & (f.abs() < 2**53)
    return f.where(whole).astype("Int64")


def _to_id(s: pd.Series) -> pd.Series:
    """Integer ids -> Int64 (int64 once checked non-missing), text ids -> str, as read."""
    dtype = s.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return pd.Series(pd.NA, index=s.index, dtype="Int64")
    if pd.api.types.is_numeric_dtype(dtype):
        return _to_int(s)
    if isinstance(dtype, pd.StringDtype):
        return _blank_to_na(s.astype("str"))
    if not pd.api.types.is_object_dtype(dtype):
        return pd.Series(pd.NA, index=s.index, dtype="Int64")
    inferred = pd.api.types.infer_dtype(s, skipna=True)
    if inferred in ("integer", "floating", "mixed-integer-float", "decimal", "empty"):
        return _to_int(pd.to_numeric(s, errors="coerce") if inferred != "empty" else s)
    if inferred in ("string", "mixed-integer", "mixed", "bytes"):
        return _blank_to_na(s.astype("str"))
    return pd.Series(pd.NA, index=s.index, dtype="Int64")


def _to_datetime(s: pd.Series) -> pd.Series:
    """Naive UTC datetime64[us]: aware values are converted to UTC, naive ones kept."""
    dtype = s.dtype
    if isinstance(dtype, pd.DatetimeTZDtype):
        out = s.dt.tz_convert("UTC").dt.tz_localize(None)
    elif pd.api.types.is_datetime64_dtype(dtype):
        out = s
    elif pd.api.types.is_object_dtype(dtype) and pd.api.types.infer_dtype(s, skipna=True) in (
        "date",
        "datetime",
    ):
        out = pd.to_datetime(s, utc=True, errors="coerce").dt.tz_localize(None)
    elif pd.api.types.is_object_dtype(dtype) or isinstance(dtype, pd.StringDtype):
        # ISO 8601 only: day/month order is never guessed.
        text = _text(s).str.strip()
        out = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
        out = out.dt.tz_localize(None)
    else:
        out = pd.Series(pd.NaT, index=s.index)
    return out.astype("datetime64[us]")


def _to_date(s: pd.Series) -> pd.Series:
    return _to_datetime(s).dt.normalize()


def _to_bool(s: pd.Series) -> pd.Series:
    dtype = s.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return s.astype("boolean")
    if pd.api.types.is_numeric_dtype(dtype):
        f = _to_float(s)
        is_true, is_false = f.eq(1), f.eq(0)
    elif pd.api.types.is_object_dtype(dtype) or isinstance(dtype, pd.StringDtype):
        text = _text(s).str.strip().str.lower()
        is_true, is_false = text.isin(TRUE_TEXT), text.isin(FALSE_TEXT)
    else:
        is_true = is_false = pd.Series(False, index=s.index)
    values = pd.arrays.BooleanArray(
        is_true.to_numpy(dtype=bool), ~(is_true | is_false).to_numpy(dtype=bool)
    )
    return pd.Series(values, index=s.index)


def _to_text(s: pd.Series) -> pd.Series:
    return _blank_to_na(_text(s))


def _blank_to_na(s: pd.Series) -> pd.Series:
    blank = s.str.strip().eq("").fillna(False).astype(bool)
    return s.mask(blank) if blank.any() else s


def _is_textlike_or_number(dtype: object) -> bool:
    return (
        pd.api.types.is_object_dtype(dtype)
        or isinstance(dtype, pd.StringDtype)
        or (pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_complex_dtype(dtype))
    )


_CONVERTERS: dict[Kind, Callable[[pd.Series], pd.Series]] = {
    "id": _to_id,
    "int": _to_int,
    "nullable_int": _to_int,
    "float": _to_float,
    "date": _to_date,
    "datetime": _to_datetime,
    "text": _to_text,
    "bool": _to_bool,
}


# --- validation ------------------------------------------------------------------------------


def _prepare(
    name: str, raw: pd.DataFrame, problems: list[str]
) -> tuple[pd.DataFrame, set[str]] | None:
    """Shape checks and conversion of one table.

    Returns (frame with contract columns, converted where possible; names of columns that did
    not convert) or None when the table cannot be checked further. Appends to `problems`.
    """
    if not isinstance(raw, pd.DataFrame):
        problems.append(f"{name}: expected a table (DataFrame), got {type(raw).__name__}.")
        return None
    names = [str(c).strip() for c in raw.columns]
    repeated = sorted({c for c in names if names.count(c) > 1})
    if repeated:
        problems.append(f"{name}: column name(s) {', '.join(repeated)} appear more than once.")
        return None
    if len(raw) == 0:
        problems.append(f"{name}: the table has no rows; it needs at least one.")
        return None
    frame = raw.set_axis(names, axis=1).reset_index(drop=True)
    missing = [c for c in REQUIRED[name] if c not in frame.columns]
    if missing:
        problems.append(
            f"{name}: missing required {_plural(len(missing), 'column', show=False)} "
            f"{', '.join(missing)}. The table has: {_listing(frame.columns)}."
        )
    keep = [c for c in contract_columns(name) if c in frame.columns]
    extra = [c for c in frame.columns if c not in keep]
    if extra:
        logger.warning(
            "%s: dropping %s not in the data contract: %s",
            name,
            _plural(len(extra), "column"),
            _listing(extra),
        )
    frame = frame[keep]
    failed: set[str] = set()
    converted = {}
    for column in keep:
        kind = COLUMNS[name][column].kind
        values, bad = _convert(frame[column], kind)
        if bad.any():
            failed.add(column)
            problems.append(
                _rows_paragraph(
                    name,
                    column,
                    f"a value readable as {KIND_TEXT[kind]}",
                    np.flatnonzero(bad.to_numpy()),
                    frame[column],
                    len(frame),
                )
            )
        else:
            converted[column] = values
    return frame.assign(**converted), failed


def _parents_for(
    name: str,
    frames: Mapping[str, pd.DataFrame],
    failed: Mapping[str, set[str]],
    problems: list[str],
) -> Parents:
    """The parent keys `name` is checked against; a check is skipped when its parent key is
    unusable (its own problem is reported) or has another id type (reported here)."""

    def usable(table: str, column: str) -> pd.Series | None:
        frame = frames.get(table)
        if frame is None or column not in frame.columns or column in failed[table]:
            return None
        return frame[column]

    def key_for(child_col: str, parent: str, parent_col: str) -> pd.Series | None:
        child, keys = usable(name, child_col), usable(parent, parent_col)
        if child is None or keys is None:
            return None
        if _is_text(child) != _is_text(keys):
            kinds = {True: "text", False: "integer"}
            problems.append(
                f"{name}.{child_col}: expected the same kind of id as {parent}.{parent_col}; "
                f"it holds {kinds[_is_text(child)]} ids but {parent}.{parent_col} holds "
                f"{kinds[_is_text(keys)]} ids, so no row can be matched. Use one id type in "
                "every table."
            )
            return None
        return keys

    if name in ("loans", "crm_interactions"):
        return Parents(customer_ids=key_for("customer_id", "customers", "customer_id"))
    if name == "repayments":
        loan_ids = key_for("loan_id", "loans", "loan_id")
        start = usable("loans", "origination_date")
        origination = None
        if loan_ids is not None and start is not None:
            # One origination per loan: duplicated loan_ids are reported on loans.
            first = ~loan_ids.duplicated()
            origination = pd.Series(start[first].to_numpy(), index=loan_ids[first].to_numpy())
        return Parents(loan_ids=loan_ids, loan_origination=origination)
    return Parents()


def _check_values(name: str, frame: pd.DataFrame, parents: Parents, failed: set[str]) -> list[str]:
    """Run the pandera schema of `name` lazily and describe every failure."""
    schema = build_schema(name, frame, parents, skip=failed)
    try:
        # pandera registers the schema on the object it validates through a weakref whose
        # callback fails noisily at interpreter exit: hand it a throwaway shallow copy.
        schema.validate(frame.copy(deep=False), lazy=True, inplace=True)
    except SchemaErrors as exc:
        return _describe_failures(name, frame, exc.failure_cases)
    return []


def _describe_failures(name: str, frame: pd.DataFrame, cases: pd.DataFrame) -> list[str]:
    """One paragraph per (column, check) of pandera's failure_cases, in frame column order.

    failure_cases has one row per failing value: column, check (our `error` text or pandera's
    check name), failure_case and index (the row label = position, as frames are reset).
    """
    cases = cases.assign(check=cases["check"].astype(str), column=cases["column"].astype(str))
    order = {c: i for i, c in enumerate(frame.columns)}
    paragraphs: list[tuple[int, str]] = []
    composite = cases["check"].eq("multiple_fields_uniqueness")
    if composite.any():
        key = list(KEYS[name])
        rows = _positions(cases.loc[composite, "index"])
        paragraphs.append(
            (
                order.get(key[0], 0),
                _rows_paragraph(
                    name,
                    ", ".join(key),
                    f"each ({', '.join(key)}) combination once (the table's key), "
                    "but some rows repeat one",
                    rows,
                    frame[key],
                    len(frame),
                ),
            )
        )
    for (column, check), group in cases[~composite].groupby(["column", "check"], sort=False):
        rows = _positions(group["index"])
        expected = describe_check(check)
        if len(rows) == 0 or column not in frame.columns:
            # Column-level failure (e.g. dtype): no rows to show.
            found = ", ".join(sorted({str(v) for v in group["failure_case"]}))
            text = f"{name}.{column}: expected {expected}; found {found}."
        else:
            shown = frame[[column, *_context(name, column, frame)]]
            text = _rows_paragraph(name, column, expected, rows, shown, len(frame))
        paragraphs.append((order.get(column, len(order)), text))
    return [text for _, text in sorted(paragraphs, key=lambda p: p[0])]


def _positions(index: pd.Series) -> np.ndarray:
    """Sorted unique integer row positions from a failure_cases index column (None = no row)."""
    values = pd.to_numeric(index, errors="coerce").dropna()
    return np.unique(values.to_numpy(dtype="int64"))


# Columns shown beside a failing value so the example explains itself.
_CONTEXT_COLUMNS = {
    ("repayments", "paid_date"): ("due_date",),
    ("repayments", "due_date"): ("loan_id",),
}


def _context(name: str, column: str, frame: pd.DataFrame) -> list[str]:
    return [c for c in _CONTEXT_COLUMNS.get((name, column), ()) if c in frame.columns]


def _rows_paragraph(
    table: str,
    column: str,
    expected: str,
    rows: np.ndarray,
    values: pd.Series | pd.DataFrame,
    n_rows: int,
) -> str:
    """'table.column: expected ...; N of M rows fail, e.g. row 3: x; row 9: y.'

    rows: sorted 0-based positions of failing rows; values: the column (or columns, shown as
    name=value) to quote for the first N_EXAMPLES of them.
    """
    picked = values.iloc[rows[:N_EXAMPLES]]
    if isinstance(picked, pd.DataFrame):
        if picked.shape[1] == 1:
            shown = [format_cell(v) for v in picked.iloc[:, 0]]
        else:
            shown = [
                ", ".join(f"{c}={format_cell(v)}" for c, v in zip(picked.columns, row, strict=True))
                for row in picked.itertuples(index=False)
            ]
    else:
        shown = [format_cell(v) for v in picked]
    examples = "; ".join(f"row {pos + 1}: {v}" for pos, v in zip(rows, shown, strict=False))
    fail = (
        f"{len(rows):,} of {n_rows:,} rows fail"
        if len(rows) != 1
        else f"1 of {n_rows:,} rows fails"
    )
    return f"{table}.{column}: expected {expected}; {fail}, e.g. {examples}."


def format_cell(value: object) -> str:
    """A short, unambiguous rendering of one cell for an error message."""
    if pd.api.types.is_scalar(value) and pd.isna(value):
        return "missing"
    if isinstance(value, pd.Timestamp):
        # str(), not .date(): years outside Python's datetime range (e.g. -1) must still render.
        text = str(value)
        return text.removesuffix(" 00:00:00") if value == value.normalize() else text
    if isinstance(value, str):
        return repr(value if len(value) <= 40 else value[:37] + "...")
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return repr(float(value))
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _warn_unusual(name: str, frame: pd.DataFrame, failed: set[str]) -> None:
    """Log values that are allowed but worth a look: they are kept."""
    if name == "crm_interactions":
        for column, known in (("type", CRM_TYPES), ("direction", DIRECTIONS)):
            if column in frame.columns and column not in failed:
                values = frame[column]
                other = values[values.notna() & ~values.isin(known)]
                if len(other):
                    top = other.value_counts().head(N_EXAMPLES)
                    logger.warning(
                        "crm_interactions.%s: %s with values outside the contract (%s), kept: %s",
                        column,
                        _plural(len(other), "row"),
                        ", ".join(known),
                        ", ".join(f"{v!r} ({n:,})" for v, n in top.items()),
                    )
    if name == "loans" and "interest_rate" in frame.columns and "interest_rate" not in failed:
        median = frame["interest_rate"].median()
        if pd.notna(median) and median > 1:
            logger.warning(
                "loans.interest_rate: median %.4g looks like a percentage; the contract expects "
                "an annual fraction (0.12 for 12%%)",
                median,
            )


def _finalise(name: str, frame: pd.DataFrame) -> pd.DataFrame:
    """Types that only hold after validation: ids and counts checked non-missing -> int64."""
    casts = {
        column: "int64"
        for column in frame.columns
        if COLUMNS[name][column].kind in ("id", "int") and frame[column].dtype == "Int64"
    }
    return frame.astype(casts) if casts else frame


def _is_text(s: pd.Series) -> bool:
    return isinstance(s.dtype, pd.StringDtype) or pd.api.types.is_object_dtype(s.dtype)


def _plural(n: int, word: str, show: bool = True) -> str:
    text = word if n == 1 else f"{word}s"
    return f"{n:,} {text}" if show else text


def _listing(names: Iterable[object], limit: int = 20) -> str:
    items = [str(n) for n in names]
    more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more
