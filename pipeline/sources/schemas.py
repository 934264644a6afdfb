"""pandera schemas for the four input tables (the data contract in `pipeline.core.contract`).

The schemas check values, not types: `pipeline.sources.conversion` first converts every
column to its contract type (ids stay int64 or text as read, which pandera cannot express as one
dtype) and `pipeline.sources.validation` reports values that do not convert. The schema is then
built per frame, because the foreign-key and date-order checks close over the parent tables
(`Parents`).

Every check carries an `error` text that completes the sentence "expected ...": pandera puts it
in `SchemaErrors.failure_cases["check"]`, and `describe_check` turns pandera's own check names
(`not_nullable`, `field_uniqueness`, ...) into the same kind of text.
"""

from __future__ import annotations

import datetime as dt
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from pipeline.core.contract import (
    BOUNDS,
    KEYS,
    OPTIONAL,
    REQUIRED,
    SENSITIVE,
    TABLES,
    VOCABULARIES,
)

with warnings.catch_warnings():
    # With pyspark installed, pandera tries to import pyspark.pandas, which warns about pandas 3
    # and then fails; pandera tries again when its check backends load on the first validate,
    # so load them here, under the filter.
    warnings.filterwarnings("ignore", message="PySpark does not yet", category=FutureWarning)
    import pandera.backends.pandas.builtin_checks  # noqa: F401
    import pandera.pandas as pa
    from pandera.errors import SchemaErrors

__all__ = [
    "COLUMNS",
    "DTYPES",
    "KIND_TEXT",
    "ColumnSpec",
    "Kind",
    "Parents",
    "SchemaErrors",
    "build_schema",
    "contract_columns",
    "describe_check",
]

Kind = Literal["id", "int", "nullable_int", "float", "date", "datetime", "text", "bool"]

# The pandas dtype each kind has after conversion (ids: int64 or str, whichever was read).
DTYPES: dict[Kind, str | None] = {
    "id": None,
    "int": "int64",
    "nullable_int": "Int64",
    "float": "float64",
    "date": "datetime64[us]",
    "datetime": "datetime64[us]",
    "text": "str",
    "bool": "boolean",
}

# What a value of each kind looks like, for "could not be read as ..." messages.
KIND_TEXT: dict[Kind, str] = {
    "id": "an integer or text id",
    "int": "a whole number",
    "nullable_int": "a whole number",
    "float": "a number",
    "date": "an ISO date such as 2024-01-31",
    "datetime": "an ISO timestamp such as 2024-01-31T14:05:00 (a UTC offset is allowed)",
    "text": "text",
    "bool": "true/false (also yes/no, 1/0)",
}

EARLIEST = pd.Timestamp("1900-01-01")
# A payment this long before its due date is a data error (wrong year, swapped columns).
MAX_PAID_EARLY = pd.Timedelta(days=365)


@dataclass(frozen=True)
class ColumnSpec:
    """One contract column: its kind after conversion and whether it may hold missing values."""

    kind: Kind
    nullable: bool = False


COLUMNS: dict[str, dict[str, ColumnSpec]] = {
    "customers": {
        "customer_id": ColumnSpec("id"),
        "customer_since": ColumnSpec("date", nullable=True),
        "birth_year": ColumnSpec("nullable_int", nullable=True),
        "annual_income": ColumnSpec("float", nullable=True),
        "employment_type": ColumnSpec("text", nullable=True),
        "region": ColumnSpec("text", nullable=True),
    },
    "loans": {
        "loan_id": ColumnSpec("id"),
        "customer_id": ColumnSpec("id"),
        "product": ColumnSpec("text", nullable=True),
        "origination_date": ColumnSpec("date"),
        "principal": ColumnSpec("float"),
        "term_months": ColumnSpec("int"),
        "interest_rate": ColumnSpec("float"),
        "channel": ColumnSpec("text", nullable=True),
    },
    "repayments": {
        "loan_id": ColumnSpec("id"),
        "installment_no": ColumnSpec("int"),
        "due_date": ColumnSpec("date"),
        "amount_due": ColumnSpec("float"),
        "paid_date": ColumnSpec("date", nullable=True),
        # empty on an instalment not paid (yet), e.g. a scheduled one; read as 0
        "amount_paid": ColumnSpec("float", nullable=True),
    },
    "crm_interactions": {
        "interaction_id": ColumnSpec("id"),
        "customer_id": ColumnSpec("id"),
        "timestamp": ColumnSpec("datetime"),
        "channel": ColumnSpec("text"),
        "type": ColumnSpec("text"),
        "resolved": ColumnSpec("bool", nullable=True),
        "resolution_days": ColumnSpec("float", nullable=True),
        "satisfaction": ColumnSpec("nullable_int", nullable=True),
        "nps": ColumnSpec("nullable_int", nullable=True),
        "direction": ColumnSpec("text", nullable=True),
        "answered": ColumnSpec("bool", nullable=True),
    },
}
for _t in TABLES:
    # Sensitive columns may appear in any table; kept as text for a fairness audit only.
    for _c in SENSITIVE:
        COLUMNS[_t][_c] = ColumnSpec("text", nullable=True)


def contract_columns(table: str) -> list[str]:
    """Columns kept in `table`, in contract order: required, optional, then sensitive."""
    return [*REQUIRED[table], *OPTIONAL[table], *SENSITIVE]


@dataclass(frozen=True)
class Parents:
    """What the child tables are checked against; None skips the check (parent already failed).

    customer_ids: customers.customer_id values (n_customers,).
    loan_ids: loans.loan_id values (n_loans,).
    loan_origination: loans.origination_date indexed by unique loan_id.
    """

    customer_ids: pd.Series | None = None
    loan_ids: pd.Series | None = None
    loan_origination: pd.Series | None = None


# pandera's names for its built-in checks -> "expected ..." text.
_BUILTIN = {
    "not_nullable": "a value in every row (this column may not be empty)",
    "field_uniqueness": "unique values (the table's key), but some rows share a value",
    "multiple_fields_uniqueness": "each key combination once, but some rows repeat one",
}


def describe_check(check: str) -> str:
    """The "expected ..." text for a `failure_cases["check"]` value."""
    if check in _BUILTIN:
        return _BUILTIN[check]
    if check.startswith("dtype("):
        return f"dtype {check[6:-1]}"
    return check


def build_schema(
    table: str, frame: pd.DataFrame, parents: Parents, skip: set[str] | frozenset[str] = frozenset()
) -> pa.DataFrameSchema:
    """Schema for one converted frame of `table`.

    Only columns present in `frame` and not in `skip` (those that failed conversion) are
    checked, so one problem is reported once. Closures capture `frame` for cross-column
    checks: validate exactly this frame.
    """
    specs = COLUMNS[table]
    key = KEYS[table]
    present = [c for c in contract_columns(table) if c in frame.columns and c not in skip]
    columns = {}
    for name in present:
        spec = specs[name]
        columns[name] = pa.Column(
            DTYPES[spec.kind],
            checks=_checks(table, name, frame, parents, set(present)),
            nullable=spec.nullable,
            unique=len(key) == 1 and name == key[0],
            coerce=False,
        )
    composite = list(key) if len(key) > 1 and all(k in present for k in key) else None
    return pa.DataFrameSchema(columns, unique=composite, name=table, strict=False)


def _checks(
    table: str, column: str, frame: pd.DataFrame, parents: Parents, usable: set[str]
) -> list[pa.Check]:
    """Value checks of one column: ranges, allowed values, foreign keys, date order.

    usable: columns present and converted, so cross-column checks compare typed values.
    """
    kind = COLUMNS[table][column].kind
    checks: list[pa.Check] = []
    if kind in ("date", "datetime"):
        checks.append(pa.Check.ge(EARLIEST, error="a date on or after 1900-01-01"))
    if (table, column) in BOUNDS:
        checks.append(_within(*BOUNDS[(table, column)], whole=kind == "int"))
    match (table, column):
        case ("customers", "birth_year"):
            year = dt.date.today().year
            checks.append(
                pa.Check.in_range(1900, year, error=f"a birth year between 1900 and {year}")
            )
        case ("crm_interactions", "channel" | "type" | "direction"):
            checks.append(_one_of(VOCABULARIES[(table, column)], f"{column}s"))
        case ("crm_interactions", "satisfaction"):
            checks.append(pa.Check.in_range(1, 5, error="a satisfaction score from 1 to 5"))
        case ("crm_interactions", "nps"):
            checks.append(pa.Check.in_range(0, 10, error="an NPS score from 0 to 10"))
        case ("loans" | "crm_interactions", "customer_id") if parents.customer_ids is not None:
            checks.append(_foreign_key(parents.customer_ids, "customers.customer_id"))
        case ("repayments", "loan_id") if parents.loan_ids is not None:
            checks.append(_foreign_key(parents.loan_ids, "loans.loan_id"))
        case ("repayments", "due_date") if (
            parents.loan_origination is not None and "loan_id" in usable
        ):
            checks.append(_due_after_origination(frame, parents.loan_origination))
        case ("repayments", "paid_date") if "due_date" in usable:
            checks.append(_paid_not_long_before_due(frame))
        case ("repayments", "amount_paid") if "paid_date" in usable:
            checks.append(_amount_when_paid(frame))
    return checks


def _within(lo: float, hi: float, whole: bool = False) -> pa.Check:
    """A finite value in [lo, hi]: the contract's plausibility bounds (`core.contract.BOUNDS`)."""
    what = "a whole number" if whole else "a finite number"
    return pa.Check(
        lambda s: np.isfinite(s.astype("float64")) & (s >= lo) & (s <= hi),
        error=f"{what} >= {_number(lo)} and <= {_number(hi)} (the contract's plausible range)",
    )


def _number(x: float) -> str:
    return f"{int(x):,}" if float(x).is_integer() else f"{x:g}"


def _one_of(allowed: tuple[str, ...], what: str) -> pa.Check:
    return pa.Check.isin(allowed, error=f"one of the {what} {', '.join(allowed)}")


def _foreign_key(parent_ids: pd.Series, parent: str) -> pa.Check:
    # isin hashes the parent keys once: linear in both tables, fine at 10M rows.
    return pa.Check(lambda s: s.isin(parent_ids), error=f"a value that exists in {parent}")


def _due_after_origination(frame: pd.DataFrame, origination: pd.Series) -> pa.Check:
    """due_date on or after its loan's origination_date (orphan loans are reported elsewhere)."""

    def check(due: pd.Series) -> pd.Series:
        # map() looks each loan_id up in the unique origination index: vectorised.
        start = frame["loan_id"].map(origination)
        return due.isna() | start.isna() | (due >= start)

    return pa.Check(
        check, ignore_na=False, error="a due date on or after the loan's origination_date"
    )


def _paid_not_long_before_due(frame: pd.DataFrame) -> pa.Check:
    due = frame["due_date"]

    def check(paid: pd.Series) -> pd.Series:
        # ignore_na=False keeps `paid` aligned with `due`; NaT (unpaid) and NaT due pass.
        return paid.isna() | due.isna() | (paid >= due - MAX_PAID_EARLY)

    return pa.Check(
        check,
        ignore_na=False,
        error="a paid date at most 365 days before due_date (paid before due by over a year)",
    )


def _amount_when_paid(frame: pd.DataFrame) -> pa.Check:
    """amount_paid present on every instalment with a paid_date; empty only on unpaid ones."""
    paid = frame["paid_date"]

    def check(amount: pd.Series) -> pd.Series:
        return amount.notna() | paid.isna()

    return pa.Check(
        check,
        ignore_na=False,
        error="an amount on every instalment with a paid_date (empty only when unpaid)",
    )
