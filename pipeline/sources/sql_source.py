"""Database sources: the contract tables read from a SQL database through SQLAlchemy.

    data.sql.url  (SQLAlchemy URL; password from data.sql.password_env when set)
    data.sql.tables[<table>] = [schema.]table | SELECT ... | WITH ...
        -> pandas.read_sql in chunks of data.sql.chunk_rows (a server-side cursor where the
           driver has one) -> raw frames, converted and validated by `pipeline.sources` exactly
           like files.

A table name is checked against a plain-identifier pattern in the config and quoted by the
dialect; a query is sent as SQL text as written, never formatted with values. Passwords never
leave this module: URLs are rendered with the password hidden, and driver messages are scrubbed
of it before they become a log line or an error.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from pipeline.config import SQL_QUERY
from pipeline.core.errors import ConfigError, DataError
from pipeline.core.secrets import mask_secrets, safe_url

logger = logging.getLogger(__name__)


def fetch_tables(
    url: URL | str, sources: Mapping[str, str], chunk_rows: int = 50_000
) -> dict[str, pd.DataFrame]:
    """Read each table of `sources` ({contract table: table name or query}) from `url`.

    Returns {table: frame as the database typed it}. Raises ConfigError for a URL whose driver
    is not installed, DataError for a database that cannot be reached or a table that cannot be
    read or holds no rows (all tables' problems together), naming the table and its source.
    """
    url = _parse(url)
    shown = safe_url(url)
    try:
        engine = sa.create_engine(url)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise ConfigError(
            f"data.sql.url {shown}: {_clean(exc, url)} (is the database driver installed?)"
        ) from None
    tables: dict[str, pd.DataFrame] = {}
    problems: list[str] = []
    try:
        _check_connection(engine, url, shown)
        for name, source in sources.items():
            try:
                tables[name] = _read_one(engine, url, name, source, chunk_rows)
            except DataError as exc:
                problems.append(str(exc))
    finally:
        engine.dispose()
    if problems:
        raise DataError("\n\n".join([f"Could not read the input tables from {shown}:", *problems]))
    return tables


def statement(source: str) -> sa.Executable:
    """The SELECT for a table name ([schema.]table, quoted by the dialect) or a query (as text)."""
    if SQL_QUERY.match(source):
        return sa.text(source)
    schema, _, table = source.rpartition(".")
    return sa.select(sa.literal_column("*")).select_from(sa.table(table, schema=schema or None))


def describe_source(source: str) -> str:
    return "query" if SQL_QUERY.match(source) else f"table {source}"


# --- helpers ---------------------------------------------------------------------------------


def _parse(url: URL | str) -> URL:
    if isinstance(url, URL):
        return url
    try:
        return make_url(url)
    except (ArgumentError, ValueError):
        raise ConfigError(
            f"{safe_url(url)} is not a SQLAlchemy URL (e.g. postgresql+psycopg://user@host/db)"
        ) from None


def _check_connection(engine: sa.Engine, url: URL, shown: str) -> None:
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("SELECT 1")).fetchall()
    except SQLAlchemyError as exc:
        raise DataError(f"Could not connect to the database {shown}: {_clean(exc, url)}") from None


def _read_one(engine: sa.Engine, url: URL, name: str, source: str, chunk_rows: int) -> pd.DataFrame:
    what = describe_source(source)
    start = time.perf_counter()
    chunks: list[pd.DataFrame] = []
    try:
        # One connection per table: a failed query aborts the transaction it ran in, and the
        # next table must not inherit that. stream_results asks for a server-side cursor, so
        # only chunk_rows rows are held by the driver at a time.
        with engine.connect() as conn:
            conn = conn.execution_options(stream_results=True, max_row_buffer=chunk_rows)
            chunks = list(pd.read_sql(statement(source), conn, chunksize=chunk_rows))
    except (SQLAlchemyError, pd.errors.DatabaseError, ValueError, TypeError) as exc:
        # pandas wraps the driver's error, quoting the statement: report the driver's own.
        cause = exc.__cause__ if isinstance(exc.__cause__, SQLAlchemyError) else exc
        raise DataError(f"{name}: could not read {what}: {_clean(cause, url)}") from None
    frame = _concat(chunks)
    if len(frame) == 0:
        raise DataError(f"{name}: {what} holds no rows; the table needs at least one.")
    logger.info(
        "read %s from %s (%s): %s rows x %d columns in %d chunk(s), %.1f s",
        name,
        safe_url(url),
        what if what == "query" else what.removeprefix("table "),
        f"{len(frame):,}",
        frame.shape[1],
        len(chunks),
        time.perf_counter() - start,
    )
    return frame


def _concat(chunks: Iterable[pd.DataFrame]) -> pd.DataFrame:
    chunks = [c for c in chunks if c is not None]
    if not chunks:
        return pd.DataFrame()
    return chunks[0] if len(chunks) == 1 else pd.concat(chunks, ignore_index=True)


def _clean(exc: BaseException, url: URL) -> str:
    """The first lines of a driver message, without the password (or the full URL)."""
    text = str(getattr(exc, "orig", None) or exc).strip() or type(exc).__name__
    # SQLAlchemy appends the statement and a link; the first lines say what went wrong.
    text = " ".join(text.split("\n[SQL:")[0].split("\n(Background")[0].splitlines()[:3])
    return mask_secrets(text, url.password, str(url)).strip()
