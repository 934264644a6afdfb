"""The sensitive columns (gender, age band) of modelling rows, for the fairness audit only.

They are never features: a prepared table may carry them beside the features; with the four
tables they are read, by loan, from the validated customers table.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from pipeline.core import catalogue
from pipeline.core.contract import SENSITIVE


def sensitive_groups(frame: pd.DataFrame, interim_dir: Path | None) -> pd.DataFrame | None:
    """The sensitive columns of `frame`'s rows: from the frame itself (a prepared table) or, by
    loan_id, from the interim loans and customers tables. None when there are none."""
    present = [c for c in SENSITIVE if c in frame.columns]
    if present:
        return frame[present]
    if interim_dir is None or "loan_id" not in frame.columns:
        return None
    customers_path = catalogue.table_file(interim_dir, "customers")
    loans_path = catalogue.table_file(interim_dir, "loans")
    if not customers_path.exists() or not loans_path.exists():
        return None
    available = set(pq.read_schema(customers_path).names)
    present = [c for c in SENSITIVE if c in available]
    if not present:
        return None
    customers = pd.read_parquet(customers_path, columns=["customer_id", *present])
    loans = pd.read_parquet(loans_path, columns=["loan_id", "customer_id"])
    by_loan = loans.merge(customers, on="customer_id", how="left").set_index("loan_id")[present]
    out = by_loan.reindex(frame["loan_id"].to_numpy())
    out.index = frame.index
    return out
