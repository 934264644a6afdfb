"""The simulated book in memory (`Book`), written to a folder, and summarised.

`write_book` writes the four tables as `<out>/<table>.<fmt>` and the truth beside them in
`<out>/truth/` (truth.json, the oracle's true PD), under the catalogue's names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from pipeline.core.catalogue import TRUE_PD, TRUTH_JSON, table_file, truth_dir
from pipeline.core.io import write_csv, write_json, write_parquet


@dataclass
class Book:
    customers: pd.DataFrame
    loans: pd.DataFrame
    repayments: pd.DataFrame
    crm_interactions: pd.DataFrame
    true_pd: pd.DataFrame
    truth: dict = field(default_factory=dict)

    def tables(self) -> dict[str, pd.DataFrame]:
        return {
            "customers": self.customers,
            "loans": self.loans,
            "repayments": self.repayments,
            "crm_interactions": self.crm_interactions,
        }


def write_book(book: Book, out_dir: Path | str, fmt: str = "parquet") -> None:
    """The tables as parquet or csv; the truth as truth.json and a parquet true PD."""
    for name, df in book.tables().items():
        target = table_file(out_dir, name, f".{fmt}")
        (write_parquet if fmt == "parquet" else write_csv)(df, target)
    write_parquet(book.true_pd, truth_dir(out_dir) / TRUE_PD)
    write_json(book.truth, truth_dir(out_dir) / TRUTH_JSON)


def book_summary(book: Book) -> dict:
    return {
        "customers": len(book.customers),
        "loans": len(book.loans),
        "repayments": len(book.repayments),
        "crm_interactions": len(book.crm_interactions),
        "mean_true_pd_12m": float(book.true_pd["true_pd"].mean()),
    }
