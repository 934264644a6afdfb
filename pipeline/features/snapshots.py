"""Snapshot (observation) dates and the end of the data.

Snapshots are first days of months: every month (`monthly`) or January, April, July and October 1
(`quarterly`). The data end date is the day after the last observed event of the book (a payment
or a CRM contact), so a snapshot on it sees every event. Due dates are not events: an extract
may list instalments scheduled after it was taken, and dating the book by them would count them
as missed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from pipeline.config import FeaturesConfig
from pipeline.core import catalogue
from pipeline.core.errors import DataError

FREQ_MONTHS = {"monthly": 1, "quarterly": 3}
EVENT_TABLES = ("repayments", "crm_interactions")


def snapshot_dates(start: dt.date, end: dt.date, freq: str = "quarterly") -> list[dt.date]:
    """First-of-month snapshot dates `d` with start <= d <= end, in order.

    freq: "monthly" (every month) or "quarterly" (Jan/Apr/Jul/Oct 1). `start` is in effect rounded
    up and `end` down to a snapshot date; an empty list when none falls between them.
    """
    if freq not in FREQ_MONTHS:
        raise ValueError(f"freq must be one of {sorted(FREQ_MONTHS)}, got {freq!r}")
    step = FREQ_MONTHS[freq]
    start, end = _as_date(start), _as_date(end)
    month = start.year * 12 + start.month - 1 + (start.day > 1)  # months since year 0
    month += -month % step  # quarterly: months 0, 3, 6, 9 of the year
    out = []
    while True:
        d = dt.date(month // 12, month % 12 + 1, 1)
        if d > end:
            return out
        out.append(d)
        month += step


def data_end_date(tables: Mapping[str, pd.DataFrame] | Path | str) -> dt.date:
    """The day after the last observed event in the book: the default as-of date of scoring.

    Events: repayments.paid_date and the date of crm_interactions.timestamp; due dates only when
    the book holds neither (instalments scheduled after the extract must not date it).
    `tables` is a mapping of the contract tables (DataFrames) or the folder of validated Parquet
    files (`<table>.parquet`). Raises DataError when there is no event at all.
    """
    con = duckdb.connect()
    try:
        if isinstance(tables, Mapping):
            for name in EVENT_TABLES:
                con.register(name, tables[name])
        else:
            for name in EVENT_TABLES:
                path = catalogue.table_file(tables, name)
                if not path.exists():
                    raise DataError(f"missing {path}: run `loanrisk ingest` first")
                con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet('{sql_path(path)}')")
        return end_date_of(con)
    finally:
        con.close()


# The last event date of the book (see `data_end_date`); plain SQL both feature engines run.
END_SQL = """
SELECT coalesce(
    greatest(
        (SELECT max(CAST(paid_date AS DATE)) FROM repayments),
        (SELECT max(CAST("timestamp" AS DATE)) FROM crm_interactions)),
    (SELECT max(CAST(due_date AS DATE)) FROM repayments)) AS last_event
"""


def end_date_of(con: duckdb.DuckDBPyConnection) -> dt.date:
    """`data_end_date` over the views `repayments` and `crm_interactions` of `con`."""
    return end_date_from(con.execute(END_SQL).fetchall()[0][0])


def end_date_from(last_event: dt.date | None) -> dt.date:
    """The data end date from the result of END_SQL; DataError when the book has no event."""
    if last_event is None:
        raise DataError("the book has no repayment or CRM event: cannot date its end")
    return last_event + dt.timedelta(days=1)


# Event columns that must not lie after the as-of date of a scoring extract. Not due_date: an
# extract lists instalments scheduled after it; at the as-of date they are not yet due.
EVENT_COLUMNS = (
    ("repayments", "paid_date"),
    ("crm_interactions", "timestamp"),
)


def check_no_events_after(tables: Mapping[str, pd.DataFrame], as_of: dt.date) -> None:
    """Raise DataError when an event is dated after `as_of` (events on `as_of` itself pass).

    Features at `as_of` would ignore such events, but an extract holding them was taken later
    than the date it is scored at, or its dates are wrong: scoring it quietly would hide that.
    """
    limit = pd.Timestamp(as_of) + pd.Timedelta(days=1)
    problems = []
    for table, column in EVENT_COLUMNS:
        frame = tables.get(table)
        if frame is None or column not in frame.columns:
            continue
        dates = pd.to_datetime(frame[column])
        late = np.flatnonzero((dates >= limit).fillna(False).to_numpy(dtype=bool))
        if len(late):
            shown = "; ".join(
                f"row {i + 1}: {dates.iloc[i]}".removesuffix(" 00:00:00") for i in late[:5]
            )
            problems.append(
                f"{table}.{column}: {len(late):,} of {len(frame):,} rows are dated after the "
                f"as-of date {as_of} (latest {dates.iloc[late].max()}), e.g. {shown}"
            )
    if problems:
        raise DataError(
            f"The tables hold events after the as-of date {as_of}: "
            + "; ".join(problems)
            + ". Score at a later --as-of (default: the data end), filter the extract, or set "
            "scoring.allow_events_after_as_of=true to back-test on a later extract."
        )


def default_snapshots(
    first_origination: dt.date, data_end: dt.date, fcfg: FeaturesConfig
) -> list[dt.date]:
    """The snapshots of a training build.

    From `features.first_snapshot`, or else the first origination plus `min_history_months`
    (rounded up to a snapshot date), to `features.last_snapshot` or else the data end (rounded
    down). Raises DataError when that range holds no snapshot.
    """
    if fcfg.first_snapshot is not None:
        start = fcfg.first_snapshot
    else:
        start = _add_months(first_origination, fcfg.min_history_months)
    end = fcfg.last_snapshot if fcfg.last_snapshot is not None else data_end
    dates = snapshot_dates(start, end, fcfg.snapshot_freq)
    if not dates:
        raise DataError(
            f"no {fcfg.snapshot_freq} snapshot date between {start} and {end} (first origination "
            f"{first_origination}, data end {data_end}); lower features.min_history_months or set "
            "features.first_snapshot / features.last_snapshot"
        )
    return dates


def normalise_snapshots(snapshots: Iterable[object]) -> list[dt.date]:
    """Sorted, de-duplicated `datetime.date`s from dates, Timestamps or ISO strings."""
    out = sorted({_as_date(s) for s in snapshots})
    if not out:
        raise DataError("no snapshot date given")
    return out


def _as_date(value: object) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return pd.Timestamp(value).date()  # type: ignore[arg-type]
    except (ValueError, TypeError):
        raise DataError(f"not a date: {value!r}") from None


def _add_months(d: dt.date, months: int) -> dt.date:
    return (pd.Timestamp(d) + pd.DateOffset(months=months)).date()


def sql_path(path: Path) -> str:
    return str(path).replace("'", "''")
