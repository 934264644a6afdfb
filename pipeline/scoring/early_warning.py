"""The early-warning list: the loans collections acts on, riskiest first.

A loan is on it when its PD is at or above `scoring.early_warning_pd`, or (with a previous
output of `loanrisk score`) when its tier moved into `scoring.early_warning_tiers` or down by at
least `scoring.early_warning_notches`. Loans already in default at the as-of date are not: there
is nothing left to warn about. The list is picked chunk by chunk as loans are scored and kept in
memory (a small share of the portfolio), then sorted by PD, highest first, and written once.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.config import ScoringConfig
from pipeline.core.errors import ConfigError, DataError
from pipeline.core.io import append_csv, spreadsheet_text
from pipeline.modelling.model import LoanRiskModel
from pipeline.riskmath import scaling
from pipeline.scoring.core import CONTEXT_COLUMNS, DEFAULTED, ID_COLUMN
from pipeline.scoring.keys import key_problem
from pipeline.scoring.summary import ScoreSummary

TIER_WORSENED, PD_THRESHOLD = "tier_worsened", "pd_threshold"


class EarlyWarning:
    """Selects, chunk by chunk, the loans for the early-warning list and writes it sorted.
    Holds the previous tiers as one Series (loan_id -> tier): two columns of the portfolio, not
    the whole file."""

    def __init__(
        self, model: LoanRiskModel, cfg: ScoringConfig, previous: Path | str | None
    ) -> None:
        self.order = scaling.tier_order(model.scoring)
        self.rank = {t: i for i, t in enumerate(self.order)}
        # the model's tiers decide the default: a model scaled with other tier names still scores
        tiers = cfg.early_warning_tiers or tuple(self.order[-2:])
        unknown = [t for t in tiers if t not in self.rank]
        if unknown:
            raise ConfigError(
                f"scoring.early_warning_tiers: {', '.join(unknown)} are not tiers of this model "
                f"({', '.join(self.order)})"
            )
        self.flag_ranks = {self.rank[t] for t in tiers}
        self.notches = cfg.early_warning_notches
        self.tiers = tuple(tiers)
        self.threshold = cfg.early_warning_pd
        self.previous = Path(previous) if previous is not None else None
        self.prev = _read_previous(self.previous, self.order) if self.previous else None
        self.n = self.n_worsened = self.n_high = self.n_matched = self.n_defaulted = 0
        self.parts: list[pd.DataFrame] = []

    def add(self, out: pd.DataFrame, context: pd.DataFrame) -> pd.DataFrame:
        """Keep the rows of `out` (a scored chunk; `context`: its loan context, same rows) that
        go on the list; returns them in the list's layout: loan_id, customer_id, as_of_date, pd,
        points, tier, previous_tier, tier_change, trigger (tier_worsened, pd_threshold or both
        joined by '+'), outstanding_balance, dpd_now, reasons, model."""
        now = out["tier"].map(self.rank).to_numpy(dtype=float)
        open_ = out["status"].to_numpy() != DEFAULTED
        if self.prev is not None:
            keys, prev = out[ID_COLUMN], self.prev
            if keys.dtype != prev.index.dtype:  # e.g. int ids now, text ids in a CSV then
                keys, prev = keys.astype(str), prev.set_axis(prev.index.astype(str))
                self.prev = prev
            before = keys.map(prev).to_numpy(dtype=object)
            before_rank = pd.Series(before).map(self.rank).to_numpy(dtype=float)
            known = ~np.isnan(before_rank)
            # Worse and now in a flagged tier (C->D, D->E), or worse by enough notches (A->C).
            # NaN (a new loan) compares False: a loan without a previous tier never "worsened".
            into = np.isin(now, list(self.flag_ranks))
            worsened = known & (now > before_rank) & (into | (now - before_rank >= self.notches))
            self.n_matched += int(known.sum())
            change = np.where(
                known, pd.Series(before).astype(str) + "->" + out["tier"].astype(str), "new"
            )
        else:
            before = np.full(len(out), None, dtype=object)
            worsened = np.zeros(len(out), dtype=bool)
            change = np.full(len(out), "", dtype=object)
        high = out["pd"].to_numpy() >= self.threshold
        worsened &= open_
        high &= open_
        keep = worsened | high
        trigger = np.where(
            worsened & high,
            f"{TIER_WORSENED}+{PD_THRESHOLD}",
            np.where(worsened, TIER_WORSENED, PD_THRESHOLD),
        )
        ew = out.loc[keep].drop(columns="status").reset_index(drop=True)
        ew.insert(1, "customer_id", context["customer_id"].to_numpy()[keep])
        at = ew.columns.get_loc("tier") + 1
        ew.insert(at, "previous_tier", pd.Series(before[keep], dtype="str"))
        ew.insert(at + 1, "tier_change", pd.Series(change[keep], dtype="str"))
        ew.insert(at + 2, "trigger", pd.Series(trigger[keep].astype(str), dtype="str"))
        for i, c in enumerate(c for c in CONTEXT_COLUMNS if c != "customer_id"):
            ew.insert(at + 3 + i, c, context[c].to_numpy(dtype=float)[keep])
        self.n += int(keep.sum())
        self.n_worsened += int(worsened.sum())
        self.n_high += int(high.sum())
        self.n_defaulted += int((~open_).sum())
        self.parts.append(ew)
        return ew

    def write(
        self,
        path: Path,
        fmt: str,
        finish: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
    ) -> pd.DataFrame:
        """The list, highest PD first (ties by loan_id, so reruns give the same file), passed
        through `finish` (columns that need the whole list, e.g. the contact budget's rank),
        to `path` as parquet or csv; returns it."""
        ew = pd.concat(self.parts, ignore_index=True) if self.parts else pd.DataFrame()
        if len(ew):
            ew = ew.sort_values(["pd", ID_COLUMN], ascending=[False, True], kind="stable")
            ew = ew.reset_index(drop=True)
        if finish is not None:
            ew = finish(ew)
        if fmt == "csv":
            append_csv(ew, path, header=True)
        else:
            pq.write_table(pa.Table.from_pandas(ew, preserve_index=False), path)
        return ew

    def fill(self, summary: ScoreSummary, path: Path) -> None:
        summary.early_warning = str(path)
        summary.n_early_warning = self.n
        summary.n_tier_worsened = self.n_worsened
        summary.n_pd_threshold = self.n_high
        summary.early_warning_pd = self.threshold
        summary.early_warning_rule = (
            f"moved into {'/'.join(self.tiers)} or down {self.notches}+ tiers"
            if self.previous
            else None
        )
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
