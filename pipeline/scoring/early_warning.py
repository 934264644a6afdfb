"""The early-warning list: the loans collections acts on, picked chunk by chunk as they are
scored (tier worse than in a previous output of `loanrisk score`, or PD >= the threshold).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.core.errors import DataError
from pipeline.core.io import spreadsheet_text
from pipeline.modelling.model import LoanRiskModel
from pipeline.riskmath import scaling
from pipeline.scoring.core import ID_COLUMN
from pipeline.scoring.keys import key_problem
from pipeline.scoring.summary import ScoreSummary


class EarlyWarning:
    """Selects, chunk by chunk, the loans for the early-warning list: tier worse than in the
    previous output (when one is given) or PD >= the threshold. Holds the previous tiers as
    one Series (loan_id -> tier): two columns of the portfolio, not the whole file."""

    def __init__(self, model: LoanRiskModel, threshold: float, previous: Path | str | None):
        self.order = scaling.tier_order(model.scoring)
        self.rank = {t: i for i, t in enumerate(self.order)}
        self.threshold = threshold
        self.previous = Path(previous) if previous is not None else None
        self.prev = _read_previous(self.previous, self.order) if self.previous else None
        self.n = self.n_worsened = self.n_high = self.n_matched = 0

    def select(self, out: pd.DataFrame) -> pd.DataFrame:
        """Rows of `out` on the list: loan_id, as_of_date, pd, points, tier, previous_tier,
        trigger (tier_worsened, pd_threshold or both joined by '+'), reasons, model."""
        now = out["tier"].map(self.rank).to_numpy(dtype=float)
        if self.prev is not None:
            keys, prev = out[ID_COLUMN], self.prev
            if keys.dtype != prev.index.dtype:  # e.g. int ids now, text ids in a CSV then
                keys, prev = keys.astype(str), prev.set_axis(prev.index.astype(str))
                self.prev = prev
            before = keys.map(prev).to_numpy(dtype=object)
            before_rank = pd.Series(before).map(self.rank).to_numpy(dtype=float)
            worsened = now > before_rank  # NaN (new loan) compares False
            self.n_matched += int((~np.isnan(before_rank)).sum())
        else:
            before = np.full(len(out), None, dtype=object)
            worsened = np.zeros(len(out), dtype=bool)
        high = out["pd"].to_numpy() >= self.threshold
        keep = worsened | high
        trigger = np.where(
            worsened & high,
            "tier_worsened+pd_threshold",
            np.where(worsened, "tier_worsened", "pd_threshold"),
        )
        ew = out.loc[keep].reset_index(drop=True)
        ew.insert(
            ew.columns.get_loc("tier") + 1,
            "previous_tier",
            pd.Series(before[keep], dtype="str"),
        )
        ew.insert(ew.columns.get_loc("previous_tier") + 1, "trigger", trigger[keep].astype(str))
        ew["trigger"] = ew["trigger"].astype("str")
        self.n += int(keep.sum())
        self.n_worsened += int(worsened.sum())
        self.n_high += int(high.sum())
        return ew

    def fill(self, summary: ScoreSummary, path: Path) -> None:
        summary.early_warning = str(path)
        summary.n_early_warning = self.n
        summary.n_tier_worsened = self.n_worsened
        summary.n_pd_threshold = self.n_high
        summary.early_warning_pd = self.threshold
        summary.previous = str(self.previous) if self.previous else None
        summary.n_matched_previous = self.n_matched


def _read_previous(path: Path, order: list[str]) -> pd.Series:
    """tier by loan_id from an earlier output (.parquet or .csv). DataError naming the file
    when it is missing, unreadable, lacks loan_id/tier, repeats a loan or has unknown tiers."""
    need = [ID_COLUMN, "tier"]
    if not path.exists():
        raise DataError(f"previous scores {path} do not exist")
    try:
        if path.suffix.lower() == ".csv":
            header = pd.read_csv(path, nrows=0).columns
            _require_previous_columns(header, need, path)
            df = pd.read_csv(path, usecols=need, dtype={"tier": "str"}, keep_default_na=False)
            # text ids as scored: undo the spreadsheet escaping of write_csv ('-17 -> -17)
            df[ID_COLUMN] = spreadsheet_text(df[ID_COLUMN])
        else:
            schema = pq.read_schema(path)
            _require_previous_columns(schema.names, need, path)
            df = pd.read_parquet(path, columns=need)
    except (OSError, ValueError, pa.ArrowException, pd.errors.ParserError) as exc:
        raise DataError(f"cannot read previous scores {path}: {exc}") from None
    problem = key_problem(df[ID_COLUMN])  # the portfolio's rule (pipeline.scoring.keys)
    if problem:
        raise DataError(f"previous scores {path}: {problem}")
    unknown = sorted(set(df["tier"].astype(str)) - set(order))
    if unknown:
        raise DataError(
            f"previous scores {path}: tier(s) {', '.join(unknown)} are not tiers of this model "
            f"({', '.join(order)})"
        )
    return pd.Series(df["tier"].astype(str).to_numpy(), index=df[ID_COLUMN].to_numpy())


def _require_previous_columns(columns: Any, need: list[str], path: Path) -> None:
    missing = [c for c in need if c not in set(columns)]
    if missing:
        raise DataError(
            f"previous scores {path} lack column(s) {', '.join(missing)} (expected an output "
            "of `loanrisk score`)"
        )
