"""Calibration tests a model validator asks for: is the level of the PD right, overall and by group?

A reliability curve shows the shape; these tests say whether the number of defaults a group
produced is compatible with the PDs it was given:

- O/E: observed defaults / expected defaults (sum of PD). Above 1 the model under-predicts.
- Binomial (sum of binomials): each loan defaults with its own PD, so the count of defaults has
  mean sum(p) and variance sum(p (1 - p)); z = (O - E) / sqrt(var), two-sided normal p-value.
  Unlike a single binomial at the mean PD, it does not assume equal PDs inside the group.
- Jeffreys (ECB instructions for IRB validation, one-sided): with the Jeffreys prior the default
  rate has a Beta(O + 1/2, n - O + 1/2) posterior; p = its CDF at the group's mean PD. A small p
  says the PD is too low for the defaults seen (the regulator's concern); over-prediction is
  not flagged by this test, by design.
- Spiegelhalter: z = sum((y - p)(1 - 2p)) / sqrt(sum((1 - 2p)^2 p (1 - p))), two-sided; it tests
  each loan's PD, not only the group's total, so a model right on average but over-confident
  (PDs spread too far towards 0 and 1) fails it; it has little power against PDs too flat.
- Hosmer-Lemeshow is in `metrics.calibration_table` (attrs).

Traffic light per test (the usual validation convention): green p >= 0.05, amber 0.01 <= p <
0.05, red p < 0.01; a row's light is its worst test's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats

from pipeline.riskmath.metrics import check_outcomes, require_columns

AMBER_P = 0.05
RED_P = 0.01
LIGHTS = ("green", "amber", "red")
COLUMNS = (
    "scope",
    "group",
    "n",
    "n_defaults",
    "expected_defaults",
    "observed_rate",
    "mean_pd",
    "o_e",
    "binomial_z",
    "binomial_p",
    "jeffreys_p",
    "spiegelhalter_z",
    "spiegelhalter_p",
    "light",
)


def light(p_value: float) -> str:
    """'green' (p >= 0.05), 'amber' (0.01 <= p < 0.05), 'red' (p < 0.01); 'n/a' for NaN."""
    if math.isnan(p_value):
        return "n/a"
    if p_value < RED_P:
        return "red"
    return "amber" if p_value < AMBER_P else "green"


def calibration_in_the_large(y: ArrayLike, p: ArrayLike) -> dict[str, float]:
    """The tests of one sample: keys are `COLUMNS` from n to light (see the module docstring).

    A sample whose PDs are all 0 or 1 has no variance: its z statistics and p-values are NaN.
    """
    y_arr, p_arr = check_outcomes(y, p)
    n, observed, expected = y_arr.size, float(y_arr.sum()), float(p_arr.sum())
    variance = float(np.sum(p_arr * (1.0 - p_arr)))
    binomial_z = (observed - expected) / math.sqrt(variance) if variance > 0 else math.nan
    mean_pd = expected / n
    jeffreys_p = float(stats.beta.cdf(mean_pd, observed + 0.5, n - observed + 0.5))
    w = 1.0 - 2.0 * p_arr
    s_var = float(np.sum(w**2 * p_arr * (1.0 - p_arr)))
    spiegelhalter_z = (
        float(np.sum((y_arr - p_arr) * w)) / math.sqrt(s_var) if s_var > 0 else math.nan
    )
    binomial_p = _two_sided(binomial_z)
    spiegelhalter_p = _two_sided(spiegelhalter_z)
    worst = np.nanmin([binomial_p, jeffreys_p, spiegelhalter_p])
    return {
        "n": int(n),
        "n_defaults": int(observed),
        "expected_defaults": expected,
        "observed_rate": observed / n,
        "mean_pd": mean_pd,
        "o_e": observed / expected if expected > 0 else math.nan,
        "binomial_z": binomial_z,
        "binomial_p": binomial_p,
        "jeffreys_p": jeffreys_p,
        "spiegelhalter_z": spiegelhalter_z,
        "spiegelhalter_p": spiegelhalter_p,
        "light": light(float(worst)),
    }


def calibration_tests(
    frame: pd.DataFrame, y_col: str, p_col: str, groups: Mapping[str, str] | None = None
) -> pd.DataFrame:
    """The tests overall and per value of each grouping column.

    groups: scope name -> column of `frame` (e.g. {"tier": "tier", "product": "product"}).
    Returns one row per scope and group with `COLUMNS`, the overall row first ("all", "all").
    """
    groups = dict(groups or {})
    require_columns(frame, [y_col, p_col, *groups.values()], "calibration_tests")
    rows = [{"scope": "all", "group": "all", **_tests_of(frame, y_col, p_col)}]
    for scope, col in groups.items():
        for value, part in frame.groupby(col, sort=True, observed=True, dropna=False):
            group = "missing" if pd.isna(value) else str(value)
            rows.append({"scope": scope, "group": group, **_tests_of(part, y_col, p_col)})
    return pd.DataFrame(rows, columns=list(COLUMNS))


def _tests_of(part: pd.DataFrame, y_col: str, p_col: str) -> dict[str, float]:
    return calibration_in_the_large(part[y_col].to_numpy(), part[p_col].to_numpy())


def _two_sided(z: float) -> float:
    return math.nan if math.isnan(z) else float(2.0 * stats.norm.sf(abs(z)))
