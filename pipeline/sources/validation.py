"""Validation: the four tables checked against the data contract, every problem in one error.

    {table: frame as read} -> validate_tables -> {table: frame in contract types and columns}

Two steps, both vectorised (no Python loop over rows):
1. conversion (`pipeline.sources.conversion`): every contract column becomes its contract type.
   Values that do not convert are reported here, because pandera's own coercion reports some
   failures without the value or row.
2. pandera (`pipeline.sources.schemas`, lazy): missing values, keys, ranges, allowed values,
   foreign keys (against the parent tables' keys) and date order, on the converted frames; its
   failure cases become one paragraph per (column, check).
All problems of all tables are collected and raised together as one `DataError`, one paragraph
per problem (`pipeline.sources.messages`). Allowed but unusual values are logged, and kept;
CRM values differing from the contract's lists only in case or spacing are rewritten (logged).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import numpy as np
import pandas as pd

from pipeline.core.contract import KEYS, REQUIRED, TABLES, VOCABULARIES
from pipeline.core.errors import DataError
from pipeline.sources.conversion import convert_column
from pipeline.sources.messages import N_EXAMPLES, ROWS_NOTE, listing, plural, rows_paragraph
from pipeline.sources.schemas import (
    COLUMNS,
    KIND_TEXT,
    Parents,
    SchemaErrors,
    build_schema,
    contract_columns,
    describe_check,
)

logger = logging.getLogger(__name__)


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
        header = f"The input tables break the data contract ({plural(len(problems), 'problem')})."
        raise DataError("\n\n".join([f"{header} {ROWS_NOTE}", *problems]))
    return {name: _finalise(name, frames[name]) for name in TABLES}


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
            f"{name}: missing required {plural(len(missing), 'column', show=False)} "
            f"{', '.join(missing)}. The table has: {listing(frame.columns)}."
        )
    keep = [c for c in contract_columns(name) if c in frame.columns]
    extra = [c for c in frame.columns if c not in keep]
    if extra:
        logger.warning(
            "%s: dropping %s not in the data contract: %s",
            name,
            plural(len(extra), "column"),
            listing(extra),
        )
    frame = frame[keep]
    failed: set[str] = set()
    converted = {}
    for column in keep:
        kind = COLUMNS[name][column].kind
        values, bad = convert_column(frame[column], kind)
        if bad.any():
            failed.add(column)
            problems.append(
                rows_paragraph(
                    name,
                    column,
                    f"a value readable as {KIND_TEXT[kind]}",
                    np.flatnonzero(bad.to_numpy()),
                    frame[column],
                    len(frame),
                )
            )
        else:
            converted[column] = _normalise_vocabulary(name, column, values)
    return frame.assign(**converted), failed


def _normalise_vocabulary(name: str, column: str, values: pd.Series) -> pd.Series:
    """A column with a fixed list of values (`contract.VOCABULARIES`) in the list's spelling.

    "Complaint", " complaint" or "Payment Reminder" can only mean one listed value, so they are
    rewritten to it (logged); anything else stays as read and fails the schema's list check,
    because a value outside the list would silently count as none of the features' types.
    """
    allowed = VOCABULARIES.get((name, column))
    if allowed is None:
        return values
    folded = values.str.strip().str.lower().str.replace(r"[\s\-]+", "_", regex=True)
    fixable = values.notna() & ~values.isin(allowed) & folded.isin(allowed)
    if not fixable.any():
        return values
    top = values[fixable].value_counts().head(N_EXAMPLES)
    logger.warning(
        "%s.%s: %s read as the contract's spelling: %s",
        name,
        column,
        plural(int(fixable.sum()), "value"),
        ", ".join(f"{v!r} -> {folded[values == v].iloc[0]!r} ({n:,})" for v, n in top.items()),
    )
    return values.mask(fixable, folded)


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
                rows_paragraph(
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
            text = rows_paragraph(name, column, expected, rows, shown, len(frame))
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


def _warn_unusual(name: str, frame: pd.DataFrame, failed: set[str]) -> None:
    """Log values that are allowed but worth a look: they are kept."""
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
    if name == "repayments" and "amount_paid" in frame.columns:
        # checked: empty only where paid_date is; nothing was paid on those instalments
        frame = frame.assign(amount_paid=frame["amount_paid"].fillna(0.0))
    return frame.astype(casts) if casts else frame


def _is_text(s: pd.Series) -> bool:
    return isinstance(s.dtype, pd.StringDtype) or pd.api.types.is_object_dtype(s.dtype)
