"""The DuckDB engine: run the staging steps of `plan` (typed tables, loan status, the loan x
snapshot grid, sorted once into the matrix's order by (snapshot_date, loan_id)), compute the two
event families with prefix sums in numpy (`repayment_arrays`, `crm_arrays`: no range joins;
their chunks the tasks of one pool of threads) for the matrix's rows, derive the features from them
and the static columns (`derive`, numpy, on two threads), and hand pandas the finished matrix
without a sort or a copy. The categories get every level of the input's sorted values, also
those absent from the rows."""

from __future__ import annotations

import datetime as dt
import logging
import tempfile
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipeline.config import Config
from pipeline.core import catalogue
from pipeline.core.contract import REQUIRED, TABLES
from pipeline.core.errors import ConfigError, DataError
from pipeline.core.io import owned_tempdir
from pipeline.core.metadata import FeatureSpec
from pipeline.features import derive
from pipeline.features.crm_arrays import crm_tables, fetch_events
from pipeline.features.plan import CATEGORY_SOURCES, FINAL_JOINS, STATIC, steps
from pipeline.features.prefix import Inline, days
from pipeline.features.repayment_arrays import fetch_instalments, repayment_tables
from pipeline.features.snapshots import (
    default_snapshots,
    end_date_of,
    normalise_snapshots,
    sql_path,
)
from pipeline.features.specs import feature_names, feature_specs

log = logging.getLogger(__name__)

KEYS = ["loan_id", "customer_id", "snapshot_date", "label"]
# Staged tables the derivation no longer needs: dropped first so their memory is reused.
SCRATCH = ("lgrid",)
# Staged steps only the array code reads (in its own sorted order, once or twice): views, not
# tables written and read back.
READ_ONCE = ("inst", "crm")


def build_features(
    interim_dir: Path, cfg: Config, snapshots: list[dt.date] | None = None
) -> tuple[pd.DataFrame, list[FeatureSpec]]:
    """The feature matrix of the validated tables in `interim_dir` (`<table>.parquet`).

    snapshots: the observation dates; None = the default range of the config (see
    `default_snapshots`). One date, e.g. [as_of], builds the rows to score at that date.
    Returns (matrix, specs): one row per active loan and snapshot, columns loan_id, customer_id,
    snapshot_date, label (Int8, NA when the performance window is incomplete) and the features
    in `feature_specs()` order, sorted by (snapshot_date, loan_id).
    """
    interim_dir = Path(interim_dir)
    missing = [t for t in TABLES if not catalogue.table_file(interim_dir, t).exists()]
    if missing:
        raise DataError(
            f"no validated table {', '.join(missing)} in {interim_dir}: run `loanrisk ingest` first"
        )
    with duckdb_connection(cfg) as con:
        for t in TABLES:
            path = sql_path(catalogue.table_file(interim_dir, t))
            con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{path}')")
        return build_on(con, cfg, snapshots)


def build_features_from_frames(
    tables: Mapping[str, pd.DataFrame], cfg: Config, snapshots: list[dt.date] | None = None
) -> tuple[pd.DataFrame, list[FeatureSpec]]:
    """`build_features` over in-memory validated tables (a mapping of the four DataFrames)."""
    with duckdb_connection(cfg) as con:
        for t in TABLES:
            if t not in tables:
                raise DataError(f"table {t} is missing")
            con.register(t, tables[t])
        return build_on(con, cfg, snapshots)


def build_on(
    con: duckdb.DuckDBPyConnection,
    cfg: Config,
    snapshots: list[dt.date] | None = None,
    timings: dict[str, float] | None = None,
    data_end: dt.date | None = None,
) -> tuple[pd.DataFrame, list[FeatureSpec]]:
    """Build over the views customers, loans, repayments and crm_interactions of `con`.

    timings: if given, receives seconds per step (stage, fetch, families, assemble).
    data_end: the book's data end date when these views hold part of it (a Spark partition of
    customers); None: theirs.
    """
    timings = {} if timings is None else timings
    clock = _Clock(timings)
    table = _matrix_table(con, cfg, snapshots, clock, data_end)
    frame = _to_pandas(con, table)
    clock.lap("assemble")
    log.debug("feature build steps (s): %s", {k: round(v, 3) for k, v in timings.items()})
    return frame, feature_specs()


def build_arrow_on(
    con: duckdb.DuckDBPyConnection,
    cfg: Config,
    snapshots: list[dt.date],
    data_end: dt.date,
) -> pa.Table:
    """`build_on` as Arrow, for the Spark engine's partitions: the same columns in the same
    order (categories as dictionaries of their values in these views, snapshot_date a date),
    without pandas."""
    return _matrix_table(con, cfg, snapshots, _Clock({}), data_end)


def _matrix_table(
    con: duckdb.DuckDBPyConnection,
    cfg: Config,
    snapshots: list[dt.date] | None,
    clock: _Clock,
    data_end: dt.date | None,
) -> pa.Table:
    """The matrix as Arrow in its order: KEYS, then the features (float64 and categories)."""
    data_end, rows, parts, categories = aggregates(con, cfg, snapshots, clock, data_end)
    for t in (*SCRATCH, "grid"):
        con.execute(f"DROP TABLE {t}")
    s = days(rows.column("s"))
    # the three groups side by side: numpy releases the GIL in their arithmetic
    with ThreadPoolExecutor(max(1, cfg.features.duckdb_threads)) as pool:
        groups = [
            pool.submit(derive.repayment, parts, s),
            pool.submit(derive.relationship, parts, s),
            pool.submit(derive.customer_loan, parts, s, cfg.features.income_rounding),
        ]
        numeric = {name: values for group in groups for name, values in group.result().items()}
    label, known = derive.label(parts, data_end)
    columns = [
        rows.column("loan_id"),
        rows.column("customer_id"),
        rows.column("s"),
        pa.array(label, mask=~known),
        # float64 from numpy: no copy, and none again in pandas
        *(categories[n] if n in categories else pa.array(numeric[n]) for n in feature_names()),
    ]
    return pa.table(columns, names=[*KEYS, *feature_names()])


def aggregates(
    con: duckdb.DuckDBPyConnection,
    cfg: Config,
    snapshots: list[dt.date] | None = None,
    clock: _Clock | None = None,
    data_end: dt.date | None = None,
) -> tuple[dt.date, pa.Table, dict[str, dict[str, np.ndarray]], dict[str, pa.ChunkedArray]]:
    """The staging steps and both families, short of the features: (data end date, the
    matrix's rows in its order (loan_id, customer_id, s, li, ci), the parts `derive` reads
    ({table of FINAL_JOINS: {column: float64 row by row, NaN for NULL}}), the categories' text
    row by row). `bench/features.py` times this as the floor of the build."""
    clock = clock or _Clock({})
    _check_columns(con)
    fcfg = cfg.features
    data_end = data_end or end_date_of(con)
    if snapshots is None:
        first = con.execute("SELECT min(CAST(origination_date AS DATE)) FROM loans").fetchall()
        if first[0][0] is None:
            raise DataError("the loans table is empty")
        snapshots = default_snapshots(first[0][0], data_end, fcfg)
    snapshots = normalise_snapshots(snapshots)

    crm_cols = {r[0] for r in con.execute("DESCRIBE crm_interactions").fetchall()}
    has = ("direction" in crm_cols, "answered" in crm_cols)
    for name, sql in steps(snapshots, fcfg, *has):
        kind = "VIEW" if name in READ_ONCE else "TABLE"
        con.execute(f"CREATE TEMP {kind} {name} AS {sql}")
        if name == "ln":
            _stage_enums(con)
    rows, parts, categories = _rows(con)
    clock.lap("stage")
    # The families' chunks are the tasks of one pool of duckdb_threads workers (with one,
    # each runs when submitted), while this thread has DuckDB fetch the next family's input:
    # the CRM events first, whose family is the longer.
    with ThreadPoolExecutor(fcfg.duckdb_threads) if fcfg.duckdb_threads > 1 else Inline() as pool:
        crm = crm_tables(fetch_events(con), rows, pool)
        clock.lap("fetch")
        repayment = repayment_tables(fetch_instalments(con), rows, fcfg.default_dpd, pool)
        clock.lap("fetch")
        parts.update(crm())
        parts.update(repayment())
    clock.lap("families")
    return data_end, rows, parts, categories


class _Clock:
    def __init__(self, timings: dict[str, float]) -> None:
        self.timings, self.t = timings, time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = self.timings.get(name, 0.0) + now - self.t
        self.t = now


class duckdb_connection:
    """A DuckDB connection with the config's memory limit and threads, spilling to a private
    temporary folder that is removed on exit."""

    def __init__(self, cfg: Config) -> None:
        self.cfg = cfg

    def __enter__(self) -> duckdb.DuckDBPyConnection:
        # Named for this process, so the next build removes one a killed build left (spills
        # can be large) and never a running build's.
        self._spill = ExitStack()
        self.tmp = str(self._spill.enter_context(owned_tempdir(tempfile.gettempdir(), "duckdb")))
        f = self.cfg.features
        self.con = duckdb.connect(
            config={
                "memory_limit": f.duckdb_memory_limit,
                "threads": f.duckdb_threads,
                "temp_directory": self.tmp,
                # order comes from the final ORDER BY; the rest may run in any order
                "preserve_insertion_order": False,
            }
        )
        return self.con

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.con.close()
        self._spill.close()
        if isinstance(exc, duckdb.OutOfMemoryException):
            # DuckDB spills to disk, but some operators need a minimum working set in memory.
            f = self.cfg.features
            raise ConfigError(
                f"the feature build needs more memory than features.duckdb_memory_limit="
                f"{f.duckdb_memory_limit} allows even when spilling to disk; raise the limit "
                f"or lower features.duckdb_threads={f.duckdb_threads} (DuckDB: {exc})"
            ) from None


def _check_columns(con: duckdb.DuckDBPyConnection) -> None:
    for t in TABLES:
        have = {r[0] for r in con.execute(f"DESCRIBE {t}").fetchall()}
        lacking = [c for c in REQUIRED[t] if c not in have]
        if lacking:
            raise DataError(f"table {t} lacks required column(s) {', '.join(lacking)}")


def _rows(
    con: duckdb.DuckDBPyConnection,
) -> tuple[pa.Table, dict[str, dict[str, np.ndarray]], dict[str, pa.ChunkedArray]]:
    """The rows of the matrix sorted by (s, loan_id), its order: the grid's loan_id,
    customer_id and s with the loan and customer numbers li and ci (loan_index,
    customer_index: 0, 1, ... in any order; the group numbers of the array code, whatever the
    type of the ids); row by row, the columns `derive` reads of each static part (plan.STATIC,
    as float64 with NaN for NULL); and the categories' text. One join of narrow rows here (the
    tables keyed by loan or customer alone are taken by number)."""
    con.execute(
        "CREATE TEMP TABLE loan_index AS "
        "SELECT loan_id, CAST(row_number() OVER () - 1 AS BIGINT) AS li FROM ln"
    )
    con.execute(
        "CREATE TEMP TABLE customer_index AS "
        "SELECT customer_id, CAST(row_number() OVER () - 1 AS BIGINT) AS ci "
        "FROM (SELECT DISTINCT customer_id FROM cgrid)"
    )
    static = [j for j in FINAL_JOINS if j[0] in STATIC]
    text = {n: (a, col) for n, (a, col, _, _) in CATEGORY_SOURCES.items()}
    columns = {
        table: {
            **STATIC[table],
            **{n: f'{a}."{col}"' for n, (a, col) in text.items() if a == alias},
        }
        for table, alias, _, _ in static
    }
    joined_here = [j for j in static if j[0] not in _BY_NUMBER]
    picked = ", ".join(
        f'{expr} AS "{alias}.{name}"'
        for table, alias, _, _ in joined_here
        for name, expr in columns[table].items()
    )
    joins = " ".join(f"{kind} {table} {alias} ON {on}" for table, alias, kind, on in joined_here)
    joined = con.sql(
        f"SELECT g.loan_id, g.customer_id, g.s, x.li, xc.ci, {picked} FROM grid g "
        "JOIN loan_index x ON x.loan_id = g.loan_id "
        f"JOIN customer_index xc ON xc.customer_id = g.customer_id {joins} "
        "ORDER BY g.s, g.loan_id"
    ).to_arrow_table()
    tables = {
        table: pa.table({name: joined.column(f"{alias}.{name}") for name in columns[table]})
        for table, alias, _, _ in joined_here
    }
    numbers = {n: joined.column(n).combine_chunks() for n in ("li", "ci")}
    for table, alias, _, on in static:
        if table in _BY_NUMBER:
            index, number = _BY_NUMBER[table]
            tables[table] = _by_number(
                con, table, alias, on, columns[table], index, number, numbers[number]
            )
    parts = {
        table: {name: tables[table].column(name).to_numpy() for name in STATIC[table]}
        for table in tables
    }
    categories = {
        name: tables[table].column(name)
        for table, alias, _, _ in static
        for name, (a, _) in text.items()
        if a == alias
    }
    return joined.select(["loan_id", "customer_id", "s", "li", "ci"]), parts, categories


# Static parts keyed by the loan or the customer alone: read once per loan or customer in
# the order of their numbers and spread to the rows by an Arrow take, rather than carried
# through the join and sort of the rows (on the bench book the wide join took 0.42 CPU
# seconds, the narrow one 0.16).
_BY_NUMBER = {
    "ln": ("loan_index", "li"),
    "loan_status": ("loan_index", "li"),
    "customers": ("customer_index", "ci"),
}


def _by_number(
    con: duckdb.DuckDBPyConnection,
    table: str,
    alias: str,
    on: str,
    columns: dict[str, str],
    index: str,
    number: str,
    numbers: pa.Array,
) -> pa.Table:
    """`columns` ({name: expression}) of `table` for each row whose loan or customer number is
    `numbers`, as the join `on` (with grid g) of FINAL_JOINS matches them: NULL where none
    does."""
    picked = ", ".join(f'{expr} AS "{name}"' for name, expr in columns.items())
    cond = on.replace("g.", "x.")
    by_number = con.sql(
        f"SELECT {picked} FROM {index} x LEFT JOIN {table} {alias} ON {cond} ORDER BY x.{number}"
    ).to_arrow_table()
    size = con.execute(f"SELECT count(*) FROM {index}").fetchall()[0][0]
    if by_number.num_rows != size:
        raise DataError(f"{table} holds a key more than once: the feature rows would repeat")
    # one chunk, text as dictionary codes: the take then moves numbers only (the three takes
    # of the bench book: 0.04 s against 0.16-0.35 s with DuckDB's chunks and text)
    by_number = by_number.combine_chunks()
    coded = [
        pc.dictionary_encode(col) if pa.types.is_string(col.type) else col
        for col in by_number.columns
    ]
    return pa.table(coded, names=by_number.column_names).take(numbers)


def _stage_enums(con: duckdb.DuckDBPyConnection) -> None:
    for name, (_, _, table, column) in CATEGORY_SOURCES.items():
        con.execute(
            f"CREATE TYPE {name}_enum AS ENUM ("
            f"SELECT DISTINCT CAST({column} AS VARCHAR) FROM {table} "
            f"WHERE {column} IS NOT NULL ORDER BY 1)"
        )


def _to_pandas(con: duckdb.DuckDBPyConnection, table: pa.Table) -> pd.DataFrame:
    """The matrix `table` (in its order already: `_rows` sorted the rows) as pandas. pandas
    takes the float columns without a copy (NaN, not NULL, marks a missing feature).
    Categoricals get every level of their ENUM (the sorted values of the input table), also
    those absent from these rows."""
    levels = {
        name: [
            v for (v,) in con.execute(f"SELECT unnest(enum_range(NULL::{name}_enum))").fetchall()
        ]
        for name in CATEGORY_SOURCES
    }
    # DuckDB's tables are done with: free them before pandas takes the matrix
    for (name,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall():
        con.execute(f"DROP TABLE {name}")
    df = table.to_pandas(split_blocks=True, self_destruct=True, date_as_object=False)
    del table
    df["label"] = df["label"].astype("Int8")
    df["snapshot_date"] = df["snapshot_date"].astype("datetime64[us]")
    for name, cats in levels.items():
        df[name] = pd.Categorical(df[name], categories=cats, ordered=False)
    return df
