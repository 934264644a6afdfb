"""Fairness audit by sensitive group (gender, age band): used only here, never as features.

For each protected attribute of the rows (`fairness.protected`, a numeric one by band), on the
out-of-time test rows, one row per group:

    n, defaults, default_rate       observed outcomes
    mean_pd                         the model's calibrated PD
    o_e, calibration                observed / expected defaults (1 = calibrated for the group,
                                    < 1 its risk is overstated) and the traffic light of its
                                    calibration tests (`calibration_tests`)
    auc                             ranking inside the group (NaN for a single class)
    favourable_rate                 share of rows with PD below scoring.early_warning_pd (not
                                    flagged for collections)
    adverse_impact_ratio            favourable_rate / the highest group favourable_rate of the
                                    column (the four-fifths rule flags values below 0.8)

Aggregates only: no id or individual value is written.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.riskmath import metrics
from pipeline.riskmath.calibration_tests import calibration_in_the_large

COLUMNS = (
    "attribute",
    "group",
    "n",
    "defaults",
    "default_rate",
    "mean_pd",
    "o_e",
    "calibration",
    "auc",
    "favourable_rate",
    "adverse_impact_ratio",
)


def fairness_table(
    groups: pd.DataFrame, y: np.ndarray, pd_: np.ndarray, favourable_below: float
) -> pd.DataFrame:
    """The table above; `groups` holds the sensitive columns of the rows (aligned with y, pd_).

    Missing group values form the group "missing". Empty frame (COLUMNS) when no sensitive
    column is present.
    """
    rows = []
    base = pd.DataFrame(
        {"y": np.asarray(y, dtype=float), "pd": np.asarray(pd_, dtype=float)},
        index=groups.index,
    )
    base["favourable"] = base["pd"] < favourable_below
    for column in groups.columns:
        key = groups[column].astype("string").fillna("missing")
        g = base.groupby(key.to_numpy(), sort=True)
        tests = {
            name: calibration_in_the_large(part["y"].to_numpy(), part["pd"].to_numpy())
            for name, part in g
        }
        table = pd.DataFrame(
            {
                "n": g.size(),
                "defaults": g["y"].sum(),
                "default_rate": g["y"].mean(),
                "mean_pd": g["pd"].mean(),
                "favourable_rate": g["favourable"].mean(),
            }
        )
        table["o_e"] = [tests[k]["o_e"] for k in table.index]
        table["calibration"] = [tests[k]["light"] for k in table.index]
        table["auc"] = [metrics.auc(part["y"], part["pd"]) for _, part in g]
        best = table["favourable_rate"].max()
        table["adverse_impact_ratio"] = table["favourable_rate"] / best if best > 0 else np.nan
        table = table.rename_axis("group").reset_index().assign(attribute=column)
        rows.append(table)
    if not rows:
        return pd.DataFrame(columns=list(COLUMNS))
    out = pd.concat(rows, ignore_index=True)[list(COLUMNS)]
    return out.astype({"n": "int64", "defaults": "int64"})
