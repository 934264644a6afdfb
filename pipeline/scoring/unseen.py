"""Category levels the model never saw in training, collected over the scored chunks.

They are scored as missing (as LightGBM treats an unseen level), which is right for a rare new
product but wrong for a whole column spelt differently ("AUTO" for "auto", region codes for
names): every loan then loses that feature and it shows only as drift. So the run reports them
per column, with the values, how many rows hold each and a few loan_ids, in the log and the
summary; `loanrisk score --strict` refuses the portfolio instead (exit 2, nothing written).
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

import pandas as pd

from pipeline.core.errors import DataError
from pipeline.scoring.core import ID_COLUMN

log = logging.getLogger(__name__)

N_VALUES = 10  # values listed per column
N_IDS = 3  # loan_ids shown per value


class UnseenLevels:
    """Counts of unseen (column, value) pairs and the first loan_ids holding each."""

    def __init__(self) -> None:
        self.counts: dict[str, Counter[str]] = {}
        self.examples: dict[tuple[str, str], list[Any]] = {}

    def add(self, unseen: pd.DataFrame) -> None:
        """unseen: rows of `scoring.core.unseen_levels` (column, value, loan_id) of one chunk."""
        if unseen.empty:
            return
        for (column, value), group in unseen.groupby(["column", "value"], sort=False):
            self.counts.setdefault(column, Counter())[value] += len(group)
            ids = self.examples.setdefault((column, value), [])
            if len(ids) < N_IDS:
                ids.extend(group[ID_COLUMN].head(N_IDS - len(ids)).tolist())

    def to_dict(self) -> dict[str, dict[str, Any]]:
        """{column: {"rows": n, "values": {value: rows}}} with the N_VALUES commonest values."""
        return {
            column: {
                "rows": sum(counts.values()),
                "values": dict(counts.most_common(N_VALUES)),
            }
            for column, counts in self.counts.items()
        }

    def describe(self) -> str:
        """One line per column: rows, values with their row counts and a few loan_ids."""
        lines = []
        for column, counts in self.counts.items():
            shown = "; ".join(
                f"{value!r} ({n:,} rows, e.g. {ID_COLUMN} "
                f"{', '.join(map(str, self.examples[(column, value)]))})"
                for value, n in counts.most_common(N_VALUES)
            )
            more = f" (+{len(counts) - N_VALUES} more values)" if len(counts) > N_VALUES else ""
            lines.append(f"{column}: {sum(counts.values()):,} rows: {shown}{more}")
        return "\n".join(lines)

    def report(self, source: object, strict: bool, known: dict[str, list[str]]) -> None:
        """Log the unseen levels; with `strict`, raise DataError listing them and the levels
        the model knows. known: {column: training levels} (the model's categories)."""
        if not self.counts:
            return
        if strict:
            levels = "; ".join(f"{c}: {', '.join(map(str, known.get(c, [])))}" for c in self.counts)
            raise DataError(
                f"scoring input {source}: category values the model never saw in training "
                f"(scored as missing without --strict):\n{self.describe()}\n"
                f"The model knows: {levels}."
            )
        log.warning(
            "%s: category values the model never saw in training, scored as missing "
            "(--strict refuses them):\n%s",
            source,
            self.describe(),
        )
