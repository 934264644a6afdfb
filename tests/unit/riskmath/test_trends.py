"""The data's own trend against a constraint's direction."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.riskmath.trends import COLUMNS, direction_check


def test_agreeing_contradicting_and_flat_features():
    rng = np.random.default_rng(0)
    n = 5000
    arrears = rng.gamma(1.0, 5.0, n)
    # reminders go to customers already in arrears: more reminders, more default
    reminders = rng.poisson(0.2 * arrears)
    noise = rng.normal(size=n)
    y = (rng.random(n) < 1 / (1 + np.exp(-(-3 + 0.2 * arrears)))).astype(int)
    X = pd.DataFrame({"arrears": arrears, "reminders": reminders, "noise": noise, "text": "a"})
    X.loc[::7, "arrears"] = np.nan  # missing values are left out, not counted as a level
    expected = {"arrears": "raises", "reminders": "lowers", "noise": "lowers", "text": "raises"}
    table = direction_check(X, y, expected).set_index("feature")
    assert list(table.reset_index().columns) == list(COLUMNS)
    assert "text" not in table.index  # not a number: no trend to measure
    assert table.loc["arrears", ["data_trend", "verdict", "light"]].tolist() == [
        "raises",
        "agrees",
        "green",
    ]
    assert table.loc["reminders", ["data_trend", "verdict", "light"]].tolist() == [
        "raises",
        "contradicts",
        "red",
    ]
    assert (
        table.loc["reminders", "rate_highest_quintile"]
        > table.loc["reminders", "rate_lowest_quintile"]
    )
    assert table.loc["noise", "verdict"] == "no clear trend"
    assert table.loc["noise", "p_value"] > 0.01
    assert table.loc["arrears", "tau"] > 0 and table.loc["arrears", "p_value"] < 1e-6
    assert table.loc["arrears", "rate_lowest_quintile"] == pytest.approx(
        y[(X["arrears"] <= X["arrears"].quantile(0.2)).to_numpy()].mean(), abs=0.01
    )
