"""Configured source: the four tables from where the config's `data` section says they are.

    data.sql set     -> the database (`pipeline.sources.sql_source`)   load_sql_tables
    otherwise        -> the files in data.raw_dir (`pipeline.sources.file_source`)  load_tables

Either way the result is the same for the same data: frames with columns converted to contract
types where every value converts, not yet validated (`pipeline.sources.validation`).
"""

from __future__ import annotations

import pandas as pd

from pipeline.config import DataConfig, SqlSourceConfig
from pipeline.core.contract import TABLES
from pipeline.sources import sql_source
from pipeline.sources.conversion import convert_clean
from pipeline.sources.file_source import load_tables


def load_source(data: DataConfig) -> dict[str, pd.DataFrame]:
    """The four tables from where the config says: the database of data.sql when set, else the
    files in data.raw_dir. Not yet validated (see `pipeline.sources.validation`)."""
    if data.sql is not None:
        return load_sql_tables(data.sql)
    return load_tables(data.raw_dir)


def load_sql_tables(sql: SqlSourceConfig) -> dict[str, pd.DataFrame]:
    """Read the four contract tables from the database of `sql` (see `pipeline.sources.sql_source`).

    Same result as `load_tables` for the same data: columns converted to contract types where
    every value converts. Raises DataError listing every table that cannot be read, with the
    URL's password hidden.
    """
    sources = {name: sql.source_for(name) for name in TABLES}
    raw = sql_source.fetch_tables(sql.resolved_url(), sources, sql.chunk_rows)
    return {name: convert_clean(frame, name) for name, frame in raw.items()}
