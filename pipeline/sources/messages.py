"""Messages: how problems in the input tables are worded for the person who must fix them.

One paragraph per problem names table, column, expectation, number of failing rows and up to
N_EXAMPLES examples; `format_cell` renders one value unambiguously ('01' vs 1, missing vs
'missing'). Rows are numbered from 1 at the first data row (in a CSV, row N is on line N + 1).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

N_EXAMPLES = 5
ROWS_NOTE = (
    "Rows are numbered from 1 at the first data row (in a CSV file, row N is on line N + 1)."
)


def rows_paragraph(
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


def plural(n: int, word: str, show: bool = True) -> str:
    """'1 row', '2 rows' (thousands separated); show=False: the word alone, 'row' or 'rows'."""
    text = word if n == 1 else f"{word}s"
    return f"{n:,} {text}" if show else text


def listing(names: Iterable[object], limit: int = 20) -> str:
    """'a, b, c' of at most `limit` names, then '(+N more)'."""
    items = [str(n) for n in names]
    more = f" (+{len(items) - limit} more)" if len(items) > limit else ""
    return ", ".join(items[:limit]) + more
