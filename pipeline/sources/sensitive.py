"""The sensitive columns (gender, age band) of modelling rows, for the fairness audit only.

They are never features: a prepared table may carry them beside the features; with the four
tables they are read, by loan, from the validated customers table.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from pipeline.config import FairnessConfig
from pipeline.core import catalogue
from pipeline.core.contract import SENSITIVE


def sensitive_groups(
    frame: pd.DataFrame, interim_dir: Path | None, fairness: FairnessConfig
) -> pd.DataFrame | None:
    """The protected attributes of `frame`'s rows, one column each: from the frame itself (a
    feature such as customer_age_years, or a prepared table's gender column) and, by loan_id,
    from the interim customers table. Numeric attributes come as bands (`fairness.bands`).
    None when the data has none."""
    out = pd.DataFrame(index=frame.index)
    for col in fairness.protected:
        if col in frame.columns:
            out[col] = _banded(frame[col], fairness.bands)
    wanted = [c for c in SENSITIVE if c in fairness.protected and c not in out.columns]
    if wanted and interim_dir is not None and "loan_id" in frame.columns:
        for col, values in _from_customers(frame, interim_dir, wanted).items():
            out[col] = values
    return out if len(out.columns) else None


def _banded(values: pd.Series, bands: tuple[float, ...]) -> pd.Series:
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return values
    edges = [-math.inf, *bands, math.inf]
    labels = [f"<{bands[0]:g}"] if bands else ["all"]
    labels += [f"{lo:g}-{hi - 1:g}" for lo, hi in zip(bands, bands[1:], strict=False)]
    labels += [f"{bands[-1]:g}+"] if bands else []
    return pd.cut(values, edges, right=False, labels=labels[: len(edges) - 1]).astype("string")


def _from_customers(frame: pd.DataFrame, interim_dir: Path, wanted: list[str]) -> pd.DataFrame:
    customers_path = catalogue.table_file(interim_dir, "customers")
    loans_path = catalogue.table_file(interim_dir, "loans")
    if not customers_path.exists() or not loans_path.exists():
        return pd.DataFrame(index=frame.index)
    present = [c for c in wanted if c in set(pq.read_schema(customers_path).names)]
    if not present:
        return pd.DataFrame(index=frame.index)
    customers = pd.read_parquet(customers_path, columns=["customer_id", *present])
    loans = pd.read_parquet(loans_path, columns=["loan_id", "customer_id"])
    by_loan = loans.merge(customers, on="customer_id", how="left").set_index("loan_id")[present]
    out = by_loan.reindex(frame["loan_id"].to_numpy())
    out.index = frame.index
    return out
