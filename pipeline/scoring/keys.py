"""The key of a scored portfolio: one rule for the portfolio and for `--previous`.

Every row needs a loan_id, and a loan_id appears once per as-of date. A repeated loan would be
scored twice (and counted twice in the summary) and, in `--previous`, its earlier tier would be
ambiguous, so both are refused with a DataError naming the ids.
"""

from __future__ import annotations

import pandas as pd

from pipeline.core.errors import DataError
from pipeline.scoring.core import ID_COLUMN

N_SHOWN = 5


class LoanKeys:
    """Collects (loan_id, as_of_date) of the scored chunks; `check` refuses repeats at the end.

    Holds two compact columns (ids as int64 or Arrow-backed text, dates as datetime64), not the
    scored rows: about 16 bytes a loan for integer ids.
    """

    def __init__(self) -> None:
        self._chunks: list[pd.DataFrame] = []

    def add(self, out: pd.DataFrame) -> None:
        ids = out[ID_COLUMN]
        if pd.api.types.is_object_dtype(ids.dtype):
            ids = ids.astype("str")  # Arrow-backed: no Python object per id is kept
        self._chunks.append(
            pd.DataFrame({ID_COLUMN: ids.to_numpy(), "as_of_date": out["as_of_date"]})
        )

    def check(self, source: object) -> None:
        """DataError naming the missing and repeated loan_ids of everything added."""
        if not self._chunks:
            return
        keys = pd.concat(self._chunks, ignore_index=True)
        problem = key_problem(keys[ID_COLUMN], keys["as_of_date"])
        if problem:
            raise DataError(f"scoring input {source}: {problem}")


def key_problem(ids: pd.Series, dates: pd.Series | None = None) -> str | None:
    """What breaks the rule in `ids` (with `dates`: per as-of date), or None.

    ids: loan_id per row; dates: the as-of date per row (None: the rows are one date).
    """
    missing = ids.isna().to_numpy()
    parts = []
    if missing.any():
        rows = ", ".join(str(i + 1) for i in missing.nonzero()[0][:N_SHOWN])
        parts.append(f"{int(missing.sum()):,} row(s) have no {ID_COLUMN} (rows {rows})")
    keyed = pd.DataFrame({"id": ids, "date": dates if dates is not None else 0})[~missing]
    repeated = keyed[keyed.duplicated(keep=False)]
    if len(repeated):
        counts = repeated.groupby(["id", "date"], sort=False, dropna=False).size()
        shown = "; ".join(
            f"{_id(i)} ({n} rows{'' if dates is None else f' at {_date(d)}'})"
            for (i, d), n in counts.head(N_SHOWN).items()
        )
        per = " at one as-of date" if dates is not None else ""
        parts.append(f"{len(counts):,} {ID_COLUMN}(s) appear more than once{per}: {shown}")
    if not parts:
        return None
    return (
        "; ".join(parts) + f". Expected one row per loan (and as-of date) with its {ID_COLUMN}: "
        "remove the repeated rows, or score each snapshot with --as-of."
    )


def _id(value: object) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _date(value: object) -> str:
    if pd.isna(value):
        return "no date"
    return str(pd.Timestamp(value).date())
