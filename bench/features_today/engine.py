"""The DuckDB engine: stage the four tables, build the loan x snapshot grid, aggregate each event
table in range joins against the snapshot table, and hand pandas the finished, sorted matrix.

Order of work (each step one SQL statement creating a temp table):
    ln, crm                  typed projections of loans and CRM events
    loan_status, inst        default / close date per loan; instalments with static flags
    snaps                    snapshot dates with their window bounds
    lgrid / grid / cgrid     loans held per snapshot / the active ones (the rows) / per customer
    rep, rep_old, rep_pre    repayment aggregates (see repayment_sql)
    crm_win, crm_hist        CRM aggregates: 12-month window, whole history (see crm_sql)
    final SELECT             joins the parts, derives the features; sorted on the way to pandas
"""

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

from features_today import crm_sql, repayment_sql
from pipeline.config import Config, FeaturesConfig
from pipeline.core import catalogue
from pipeline.core.contract import REQUIRED, TABLES
from pipeline.core.errors import ConfigError, DataError
from pipeline.core.io import owned_tempdir
from pipeline.core.metadata import FeatureSpec
from pipeline.features.snapshots import (
    default_snapshots,
    end_date_of,
    normalise_snapshots,
    sql_path,
)
from pipeline.features.specs import feature_names, feature_specs

log = logging.getLogger(__name__)

KEYS = ["loan_id", "customer_id", "snapshot_date", "label"]
# Source of each categorical feature: (alias in the final SELECT, staged table, column).
CATEGORY_SOURCES = {
    "product": ("l", "ln", "product"),
    "employment_type": ("c", "customers", "employment_type"),
    "region": ("c", "customers", "region"),
    "loan_channel": ("l", "ln", "loan_channel"),
}
# Staged tables the final SELECT no longer needs: dropped first so their memory is reused.
SCRATCH = ("inst", "crm", "lgrid")


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
    with _connection(cfg) as con:
        for t in TABLES:
            path = sql_path(catalogue.table_file(interim_dir, t))
            con.execute(f"CREATE VIEW {t} AS SELECT * FROM read_parquet('{path}')")
        return build_on(con, cfg, snapshots)


def build_features_from_frames(
    tables: Mapping[str, pd.DataFrame], cfg: Config, snapshots: list[dt.date] | None = None
) -> tuple[pd.DataFrame, list[FeatureSpec]]:
    """`build_features` over in-memory validated tables (a mapping of the four DataFrames)."""
    with _connection(cfg) as con:
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
) -> tuple[pd.DataFrame, list[FeatureSpec]]:
    """Build over the views customers, loans, repayments and crm_interactions of `con`.

    timings: if given, receives seconds per step (stage, repayment, crm, assemble).
    """
    timings = {} if timings is None else timings
    clock = _Clock(timings)
    _check_columns(con)
    fcfg = cfg.features
    data_end = end_date_of(con)
    if snapshots is None:
        first = con.execute("SELECT min(CAST(origination_date AS DATE)) FROM loans").fetchall()
        if first[0][0] is None:
            raise DataError("the loans table is empty")
        snapshots = default_snapshots(first[0][0], data_end, fcfg)
    snapshots = normalise_snapshots(snapshots)

    crm_cols = {r[0] for r in con.execute("DESCRIBE crm_interactions").fetchall()}
    _stage(con, snapshots, fcfg, "direction" in crm_cols, "answered" in crm_cols)
    clock.lap("stage")
    for sql in (repayment_sql.window(), repayment_sql.OLDER, repayment_sql.PREPAID):
        con.execute(sql)
    clock.lap("repayment")
    con.execute(crm_sql.window())
    con.execute(crm_sql.HISTORY)
    clock.lap("crm")
    for t in SCRATCH:
        con.execute(f"DROP TABLE {t}")
    frame = _to_pandas(con, con.sql(final_sql(data_end, fcfg.income_rounding)), fcfg.duckdb_threads)
    clock.lap("assemble")
    log.debug("feature build steps (s): %s", {k: round(v, 3) for k, v in timings.items()})
    return frame, feature_specs()


class _Clock:
    def __init__(self, timings: dict[str, float]) -> None:
        self.timings, self.t = timings, time.perf_counter()

    def lap(self, name: str) -> None:
        now = time.perf_counter()
        self.timings[name] = self.timings.get(name, 0.0) + now - self.t
        self.t = now


class _connection:
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


LOANS = """
CREATE TEMP TABLE ln AS
SELECT loan_id, customer_id, CAST(origination_date AS DATE) AS orig,
       CAST(principal AS DOUBLE) AS principal, CAST(term_months AS BIGINT) AS term,
       CAST(interest_rate AS DOUBLE) AS rate, product, channel AS loan_channel,
       -- the contractual annuity instalment, rounded to cents
       round(CASE WHEN interest_rate = 0 THEN principal / nullif(term_months, 0)
                  ELSE principal * (interest_rate / 12)
                       / (1 - pow(1 + interest_rate / 12, -term_months)) END, 2)
           AS monthly_payment
FROM loans
"""


def snaps_sql(source: str, window_months: int) -> str:
    """Snapshot dates (column s of `source`) with their window bounds as DATE and TIMESTAMP."""
    bounds = ",\n           ".join(
        f"CAST(s - INTERVAL {m} MONTH AS DATE) AS lo{m}, "
        f"CAST(CAST(s - INTERVAL {m} MONTH AS DATE) AS TIMESTAMP) AS lo{m}_ts"
        for m in (3, 6, 12)
    )
    return f"""
    CREATE TEMP TABLE snaps AS
    SELECT s, CAST(s AS TIMESTAMP) AS s_ts,
           {bounds},
           CAST(s + INTERVAL {int(window_months)} MONTH AS DATE) AS hi
    FROM (SELECT DISTINCT CAST(s AS DATE) AS s FROM {source})
    """


# lgrid: loans originated before s and not closed (held); grid: those not defaulted before s
# either (active: the rows); cgrid: per customer with an active loan, the loans held and the
# monthly instalments of the active ones in cents.
GRID = (
    """
    CREATE TEMP TABLE lgrid AS
    SELECT l.loan_id, l.customer_id, sn.s, l.monthly_payment,
           (st.default_date IS NULL OR st.default_date >= sn.s) AS active
    FROM ln l
    JOIN snaps sn ON l.orig < sn.s
    LEFT JOIN loan_status st ON st.loan_id = l.loan_id
    WHERE st.close_date IS NULL OR st.close_date >= sn.s
    """,
    "CREATE TEMP TABLE grid AS SELECT loan_id, customer_id, s FROM lgrid WHERE active",
    """
    CREATE TEMP TABLE cgrid AS
    SELECT customer_id, s, count(*) AS products_held,
           sum(CAST(round(monthly_payment * 100) AS BIGINT)) FILTER (WHERE active) AS debt_c
    FROM lgrid GROUP BY customer_id, s HAVING bool_or(active)
    """,
)


def _stage(
    con: duckdb.DuckDBPyConnection,
    snapshots: list[dt.date],
    fcfg: FeaturesConfig,
    has_direction: bool,
    has_answered: bool,
) -> None:
    con.execute(LOANS)
    con.execute(crm_sql.staged_crm(has_direction, has_answered))
    con.execute(repayment_sql.loan_status(fcfg.default_dpd))
    con.execute(repayment_sql.INSTALMENTS)
    con.register("snap_in", pd.DataFrame({"s": pd.to_datetime(snapshots)}))
    con.execute(snaps_sql("snap_in", fcfg.performance_window_months))
    con.unregister("snap_in")
    for name, (_, table, column) in CATEGORY_SOURCES.items():
        con.execute(
            f"CREATE TYPE {name}_enum AS ENUM ("
            f"SELECT DISTINCT CAST({column} AS VARCHAR) FROM {table} "
            f"WHERE {column} IS NOT NULL ORDER BY 1)"
        )
    for sql in GRID:
        con.execute(sql)


def final_sql(data_end: dt.date, income_step: float = 0.0) -> str:
    """The SELECT joining the parts into the matrix (unordered: `_to_pandas` sorts).

    income_step: annual_income enters the matrix rounded (half up) to this step; 0 = exact.
    """
    income = (
        f"floor(c.annual_income / {float(income_step)!r} + 0.5) * {float(income_step)!r}"
        if income_step > 0
        else "c.annual_income"
    )
    customer_loan = [
        f"{income} AS annual_income",
        "cg.debt_c / 100.0 * 12 / nullif(c.annual_income, 0) AS debt_to_income",
        "year(g.s) - c.birth_year AS customer_age_years",
        "l.monthly_payment AS monthly_payment",
        "l.principal AS principal",
        "l.rate AS interest_rate",
        "l.term AS term_months",
    ]
    numeric = repayment_sql.select_columns() + crm_sql.select_columns() + customer_loan
    cols = []
    for col in numeric:
        expr, name = col.rsplit(" AS ", 1)
        # NaN rather than NULL: float columns without nulls reach pandas without a copy
        cols.append(f"coalesce(CAST({expr} AS DOUBLE), 'NaN'::DOUBLE) AS {name.strip()}")
    cols += [
        f"CAST({alias}.{col} AS {name}_enum) AS {name}"
        for name, (alias, _, col) in CATEGORY_SOURCES.items()
    ]
    names = [c.rsplit(" AS ", 1)[1].strip() for c in cols]
    if names != feature_names():
        raise AssertionError(f"SQL columns {names} do not follow the feature specs")
    sep = ",\n           "
    return f"""
    SELECT g.loan_id, g.customer_id, g.s AS snapshot_date,
           CAST(CASE WHEN sn.hi > DATE '{data_end.isoformat()}' THEN NULL
                     WHEN st.default_date < sn.hi THEN 1 ELSE 0 END AS TINYINT) AS label,
           {sep.join(cols)}
    FROM grid g
    JOIN snaps sn ON sn.s = g.s
    JOIN ln l ON l.loan_id = g.loan_id
    LEFT JOIN loan_status st ON st.loan_id = g.loan_id
    LEFT JOIN rep r ON r.loan_id = g.loan_id AND r.s = g.s
    LEFT JOIN rep_old ro ON ro.loan_id = g.loan_id AND ro.s = g.s
    LEFT JOIN rep_pre rp ON rp.loan_id = g.loan_id AND rp.s = g.s
    JOIN cgrid cg ON cg.customer_id = g.customer_id AND cg.s = g.s
    LEFT JOIN crm_win cw ON cw.customer_id = g.customer_id AND cw.s = g.s
    LEFT JOIN crm_hist ch ON ch.customer_id = g.customer_id AND ch.s = g.s
    LEFT JOIN customers c ON c.customer_id = g.customer_id
    """


def _to_pandas(
    con: duckdb.DuckDBPyConnection, rel: duckdb.DuckDBPyRelation, threads: int
) -> pd.DataFrame:
    """The result as pandas, sorted by (snapshot_date, loan_id).

    Through Arrow rather than an ORDER BY: DuckDB's sort materialises the wide rows and its
    Arrow export comes in row-group chunks that pandas must concatenate, two more copies of the
    whole matrix. Here the two keys are sorted in numpy and each column gathered once in that
    order (one contiguous chunk, in parallel); pandas then takes the float columns without a
    copy (NaN, not NULL, marks a missing feature). Categoricals get every level of their ENUM
    (the sorted values of the input table), also those absent from these rows.
    """
    table = rel.to_arrow_table()
    # DuckDB's tables are done with: free them before the gather doubles the matrix in memory
    levels = {
        name: [
            v for (v,) in con.execute(f"SELECT unnest(enum_range(NULL::{name}_enum))").fetchall()
        ]
        for name in CATEGORY_SOURCES
    }
    for (name,) in con.execute("SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall():
        con.execute(f"DROP TABLE {name}")
    days = table.column("snapshot_date").cast(pa.int32()).to_numpy()
    order = pa.array(np.lexsort((table.column("loan_id").to_numpy(), days)))
    with ThreadPoolExecutor(max(1, threads)) as pool:
        columns = list(pool.map(lambda col: pc.take(col, order), table.columns))
    table = pa.table(columns, names=table.column_names)
    del columns
    df = table.to_pandas(split_blocks=True, self_destruct=True, date_as_object=False)
    del table
    df["label"] = df["label"].astype("Int8")
    df["snapshot_date"] = df["snapshot_date"].astype("datetime64[us]")
    for name, cats in levels.items():
        df[name] = pd.Categorical(df[name], categories=cats, ordered=False)
    return df
