"""Conversion: each contract column to its contract type, vectorised, noting what did not convert.

    id            int64 ids stay integers (Int64 until checked non-missing); text ids stay text
    int           whole numbers (Int64); 2.5 or 1e300 as a count does not convert
    nullable_int  the same, missing values allowed
    float         float64
    date          naive UTC datetime64[us] at midnight
    datetime      naive UTC datetime64[us]: aware values converted to UTC, text ISO 8601 only
    text          str, blank text missing
    bool          boolean from true/false, t/f, yes/no, y/n, 1/0 (any case) or 1/0 numbers

Values that do not convert are reported by `pipeline.sources.validation`, because pandera's own
coercion reports some failures without the value or row.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow

from pipeline.sources.schemas import COLUMNS, Kind

TRUE_TEXT = ("true", "t", "yes", "y", "1")
FALSE_TEXT = ("false", "f", "no", "n", "0")

# Failures of unusual column contents inside pandas/pyarrow conversions.
_CONVERSION_ERRORS = (TypeError, ValueError, OverflowError, pyarrow.ArrowException)


def convert_clean(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    """Convert each contract column whose values all convert; leave the others as read."""
    specs = COLUMNS.get(name, {})
    converted = {}
    for column in frame.columns:
        if isinstance(column, str) and column in specs:
            values, bad = convert_column(frame[column], specs[column].kind)
            if not bad.any():
                converted[column] = values
    return frame.assign(**converted) if converted else frame


def convert_column(s: pd.Series, kind: Kind) -> tuple[pd.Series, pd.Series]:
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
