"""Calibration tests: hand-computed values, a well-calibrated model passes, a mis-calibrated one
fails, and the per-group table."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import optimize, stats
from scipy.special import expit, logit

from pipeline.riskmath.calibration_tests import (
    COLUMNS,
    calibration_in_the_large,
    calibration_tests,
    light,
)


def test_four_loans_by_hand():
    y = np.array([1, 0, 0, 1])
    p = np.array([0.5, 0.5, 0.2, 0.2])
    t = calibration_in_the_large(y, p)
    # O = 2, E = 1.4, var = 0.25 + 0.25 + 0.16 + 0.16 = 0.82
    assert t["n_defaults"] == 2 and t["expected_defaults"] == pytest.approx(1.4)
    assert t["o_e"] == pytest.approx(2 / 1.4)
    assert t["binomial_z"] == pytest.approx(0.6 / math.sqrt(0.82))
    assert t["binomial_p"] == pytest.approx(2 * (1 - stats.norm.cdf(0.6 / math.sqrt(0.82))))
    # Spiegelhalter: weights 1 - 2p = 0, 0, 0.6, 0.6; numerator (0 - 0.2) 0.6 + (1 - 0.2) 0.6
    # = 0.36; variance 0.36 * 0.16 * 2 = 0.1152
    assert t["spiegelhalter_z"] == pytest.approx(0.36 / math.sqrt(0.1152))
    # Jeffreys: Beta(2.5, 2.5) at the mean PD 0.35
    assert t["jeffreys_p"] == pytest.approx(stats.beta.cdf(0.35, 2.5, 2.5))


@pytest.mark.parametrize(
    ("p_value", "colour"),
    [(0.5, "green"), (0.05, "green"), (0.0499, "amber"), (0.01, "amber"), (0.0099, "red")],
)
def test_traffic_light_thresholds(p_value, colour):
    assert light(p_value) == colour
    assert light(float("nan")) == "n/a"


def _book(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    p = 1 / (1 + np.exp(-rng.normal(-3.2, 1.0, n)))
    return (rng.random(n) < p).astype(int), p


def test_a_calibrated_model_passes_and_an_under_predicting_one_fails():
    y, p = _book(20_000, seed=3)
    fair = calibration_in_the_large(y, p)
    assert 0.9 < fair["o_e"] < 1.1 and fair["light"] == "green"
    low = calibration_in_the_large(y, p * 0.8)  # PDs 20% too low
    assert low["o_e"] > 1.2 and low["light"] == "red"
    assert low["jeffreys_p"] < 0.01 and low["binomial_z"] > 0
    # Over-prediction: the binomial test sees it, the one-sided Jeffreys test by design does not.
    high = calibration_in_the_large(y, np.minimum(p * 1.25, 1))
    assert high["binomial_p"] < 0.01 and high["jeffreys_p"] > 0.99


def test_spiegelhalter_catches_a_model_right_on_average_but_over_confident():
    y, p = _book(20_000, seed=4)
    # Twice the log-odds spread, shifted so the total of PDs still equals the defaults seen.
    shift = optimize.brentq(lambda b: expit(2 * logit(p) + b).sum() - y.sum(), -20, 20)
    sharp = expit(2 * logit(p) + shift)
    t = calibration_in_the_large(y, sharp)
    assert t["o_e"] == pytest.approx(1.0) and t["binomial_p"] > 0.99
    assert t["spiegelhalter_z"] > 5 and t["light"] == "red"
    assert calibration_in_the_large(y, p)["spiegelhalter_p"] > 0.05


def test_per_group_rows_find_the_mis_calibrated_segment():
    y, p = _book(30_000, seed=5)
    segment = np.where(np.arange(y.size) % 3 == 0, "bad", "good")
    p = np.where(segment == "bad", p * 0.6, p)
    frame = pd.DataFrame({"y": y, "pd": p, "segment": segment, "tier": "A"})
    frame.loc[::10, "segment"] = None
    table = calibration_tests(frame, "y", "pd", {"segment": "segment"})
    assert list(table.columns) == list(COLUMNS)
    assert table.iloc[0][["scope", "group", "n"]].tolist() == ["all", "all", 30_000]
    rows = table.set_index("group")
    assert rows.loc["bad", "light"] == "red" and rows.loc["bad", "o_e"] > 1.4
    assert rows.loc["good", "light"] == "green"
    assert rows.loc["missing", "n"] == 3_000
    assert rows.loc[["bad", "good", "missing"], "n"].sum() == 30_000
