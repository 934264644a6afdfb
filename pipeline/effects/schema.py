"""What the effect study produces: the `EffectStudy` result, the columns of its three tables and
the verdict strings. Plain data only, shared by the estimation, the writers and the report (so
none of them imports another for its vocabulary)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from pipeline.config import EffectsConfig

VERDICT_REDUCES = "reduces default"
VERDICT_RAISES = "raises default"
VERDICT_UNCLEAR = "cannot tell"
VERDICT_SKIPPED = "not estimated"


@dataclass
class EffectStudy:
    """Everything the study found.

    table: one row per lever (see `TABLE_COLUMNS`); effects in percentage points of PD.
    tiers: lever x risk tier effects (see `TIER_COLUMNS`).
    overlap: lever x arm propensity mean and quantiles (see `OVERLAP_COLUMNS`).
    rows: per lever, the rows studied: loan_id, customer_id, snapshot_date, treated, label,
        propensity (out of fold), kept (inside the bounds), tier, score (doubly robust).
    snapshots: the pooled snapshot dates.
    config: the effects settings the study ran with.
    cate: per estimated lever, its conditional effect on the modifiers (plain numbers).
    customers / customers_in_book: the customers studied (a sample when fewer than the book's,
        `effects.max_customers`) and the book's; 0 when not known (a study built by hand).
    """

    table: pd.DataFrame
    tiers: pd.DataFrame
    overlap: pd.DataFrame
    rows: dict[str, pd.DataFrame] = field(default_factory=dict)
    snapshots: list[dt.date] = field(default_factory=list)
    seconds: float = 0.0
    config: EffectsConfig = field(default_factory=EffectsConfig)
    # per lever, the linear conditional effect (`heterogeneity.LinearCate.to_dict()`)
    cate: list[dict] = field(default_factory=list)
    # the simulated book's policy replay (`policy.PolicyReplay`), None when not run
    policy: Any = None
    customers: int = 0
    customers_in_book: int = 0

    @property
    def sampled(self) -> bool:
        """Whether the study ran on a sample of the book's customers."""
        return 0 < self.customers < self.customers_in_book


TABLE_COLUMNS = [
    "lever",
    "event_type",
    "kind",
    "feature",
    "window_months",
    "n_rows",
    "n_treated",
    "n_control",
    "n_customers",
    "n_snapshots",
    "naive_pp",
    "ate_pp",
    "ci_low_pp",
    "ci_high_pp",
    "se_pp",
    "se_unclustered_pp",
    "p_value",
    "verdict",
    "trimmed_share",
    "overlap",
    "placebo_pp",
    "placebo_ci_low_pp",
    "placebo_ci_high_pp",
    "placebo_pass",
    "rcc_pp",
    "rcc_shift_se",
    "rcc_pass",
    "seconds",
    "note",
]
TIER_COLUMNS = [
    "lever",
    "tier",
    "n_rows",
    "n_treated",
    "baseline_pd_mean",
    "ate_pp",
    "ci_low_pp",
    "ci_high_pp",
    "note",
]
OVERLAP_COLUMNS = ["lever", "arm", "n", "mean", "q01", "q05", "q25", "q50", "q75", "q95", "q99"]
