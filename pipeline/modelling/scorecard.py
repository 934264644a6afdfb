"""The traditional challenger: a WOE logistic scorecard, as a credit team would build it.

Each feature is binned on the training split with monotonic event rates (optbinning's
BinningProcess: optimal binning solved with OR-Tools), replaced by its weight of evidence, and
the features with enough information value go into a logistic regression, scaled to points with
the same PDO, base score and odds as the model's scores. Written with optbinning rather than by
hand: its binning is the reference implementation credit teams and validators know.

It is a challenger, not a model the pipeline serves: it answers "how much does the boosted
model add over a scorecard?" on the same rows.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from optbinning import BinningProcess, Scorecard
from sklearn.linear_model import LogisticRegression

from pipeline.config import ScoringConfig
from pipeline.modelling.dataset import Dataset

log = logging.getLogger(__name__)

# A characteristic needs at least weak information value (0.02, the usual rule of thumb) to
# enter, and a scorecard keeps the strongest few: a validator reads every line of it.
MIN_IV = 0.02
MAX_CHARACTERISTICS = 15
MAX_CORRELATION = 0.7
IV_COLUMNS = ("feature", "dtype", "selected", "n_bins", "iv", "gini")


@dataclass(frozen=True)
class ScorecardResult:
    """The fitted challenger's test PDs, its IV table (every feature) and points table (the
    selected characteristics, one row per bin)."""

    pd_test: np.ndarray
    iv: pd.DataFrame
    points: pd.DataFrame


def fit_scorecard(data: Dataset, scoring: ScoringConfig, seed: int = 0) -> ScorecardResult:
    parts = data.parts()
    x_train, y_train = (_plain(parts["train"][0]), parts["train"][1])
    x_test = _plain(parts["test"][0])
    categorical = [s.name for s in data.specs if s.kind == "categorical"]
    with warnings.catch_warnings():
        # optbinning warns for every feature whose solver status is not OPTIMAL but feasible.
        warnings.simplefilter("ignore", UserWarning)
        binned = _binning(list(x_train.columns), categorical).fit(x_train, y_train)
        iv = binned.summary().rename(columns={"name": "feature"})
        selected = _characteristics(binned.transform(x_train, metric="woe"), iv)
        card = Scorecard(
            binning_process=_binning(selected, categorical),
            estimator=LogisticRegression(max_iter=2000, random_state=seed),
            scaling_method="pdo_odds",
            scaling_method_params={
                "pdo": scoring.pdo,
                "odds": scoring.base_odds,
                "scorecard_points": scoring.base_score,
            },
        )
        card.fit(x_train[selected], y_train)
    pd_test = card.predict_proba(x_test[selected])[:, 1]
    iv = iv.assign(selected=iv["feature"].isin(selected))[list(IV_COLUMNS)]
    iv = iv.sort_values("iv", ascending=False, kind="stable").reset_index(drop=True)
    points = card.table(style="detailed")
    keep = ("Variable", "Bin", "Count", "Event rate", "WoE", "IV", "Points")
    points = points[[c for c in keep if c in points.columns]].reset_index(drop=True)
    # A categorical bin is a list of levels: shown as text, like the numeric intervals.
    points["Bin"] = points["Bin"].map(_bin_label)
    log.info("scorecard challenger: %d of %d characteristics", len(selected), len(iv))
    return ScorecardResult(pd_test, iv, points)


def _binning(names: list[str], categorical: list[str]) -> BinningProcess:
    return BinningProcess(
        names,
        categorical_variables=[c for c in categorical if c in names],
        binning_fit_params={
            n: {"monotonic_trend": "auto_asc_desc"} for n in names if n not in categorical
        },
    )


def _characteristics(woe: pd.DataFrame, iv: pd.DataFrame) -> list[str]:
    """The strongest features by IV, skipping any whose WOE correlates above MAX_CORRELATION
    with one already in: collinear characteristics (the 3, 6 and 12-month versions of one
    behaviour) get coefficients of opposite signs and points that no longer follow the risk."""
    corr = woe.corr().abs()
    chosen: list[str] = []
    for name in iv.sort_values("iv", ascending=False, kind="stable")["feature"]:
        if (
            len(chosen) == MAX_CHARACTERISTICS
            or float(iv.set_index("feature").at[name, "iv"]) < MIN_IV
        ):
            break
        if all(corr.at[name, c] <= MAX_CORRELATION for c in chosen):
            chosen.append(name)
    return chosen


def _bin_label(value: object) -> str:
    if isinstance(value, str) or not hasattr(value, "__iter__"):
        return str(value)
    return ", ".join(str(v) for v in value)


def _plain(x: pd.DataFrame) -> pd.DataFrame:
    """Categories as plain strings (missing stays missing): optbinning bins object columns."""
    out = x.copy()
    for col in out.columns:
        if isinstance(out[col].dtype, pd.CategoricalDtype):
            out[col] = out[col].astype(object).where(out[col].notna(), np.nan)
    return out
