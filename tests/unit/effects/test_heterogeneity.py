"""Heterogeneous effects: the linear final stage on the doubly robust scores finds a planted
modifier, ignores a null one, and its numbers give each loan's effect."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.config import EffectsConfig
from pipeline.effects.heterogeneity import cate_table, fit_linear_cate
from pipeline.effects.inference import fit_dr


def _planted(n: int, seed: int = 0):
    """Targeted treatment; the effect (log-odds) is -1.2 for x0 > 0 and 0 otherwise; x1 is a
    null modifier."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 3))
    t = (rng.random(n) < 1 / (1 + np.exp(-(0.8 * x[:, 2] - 0.3)))).astype(int)
    base = -2.0 + 0.8 * x[:, 2] + 0.3 * x[:, 1]
    eff = np.where(x[:, 0] > 0, -1.2, 0.0)
    y = (rng.random(n) < 1 / (1 + np.exp(-(base + eff * t)))).astype(float)
    p1, p0 = 1 / (1 + np.exp(-(base + eff))), 1 / (1 + np.exp(-base))
    return x, t, y, p1 - p0


def test_linear_cate_finds_the_planted_modifier_and_not_the_null():
    x, t, y, tau = _planted(12000)
    groups = np.arange(len(y)) // 3
    fit = fit_dr(y, t, x, groups, EffectsConfig(n_estimators=60, min_child_samples=50))
    frame = pd.DataFrame({"m0": x[:, 0], "m1": x[:, 1], "const": 1.0})
    cate = fit_linear_cate("l", fit.scores, frame, groups, ["m0", "m1", "const", "absent"])
    assert cate.modifiers == ["m0", "m1"]  # constant and absent modifiers left out
    table = cate_table([cate]).set_index("term")
    m0, m1 = table.loc["m0"], table.loc["m1"]
    assert m0["ci_high_pp"] < 0  # more x0, a larger reduction
    assert m1["ci_low_pp"] <= 0 <= m1["ci_high_pp"]
    # the true slope of tau on standardised x0, in pp, lies in the interval
    z = (x[:, 0] - np.median(x[:, 0])) / x[:, 0].std()
    slope = 100 * np.polyfit(z, tau, 1)[0]
    assert m0["ci_low_pp"] <= slope <= m0["ci_high_pp"]
    # the numbers alone give a loan's effect: centre, scale, coefficients
    row = np.array([1.0, (1.5 - cate.center[0]) / cate.scale[0], 0.0])
    assert float(row @ np.array(cate.coef)) < float(np.array(cate.coef)[0])


def test_a_missing_modifier_counts_as_the_median():
    rng = np.random.default_rng(1)
    scores = rng.normal(size=400)
    frame = pd.DataFrame({"m": np.where(rng.random(400) < 0.2, np.nan, rng.normal(size=400))})
    cate = fit_linear_cate("l", scores, frame, np.arange(400), ["m"])
    assert cate.center[0] == pytest.approx(np.nanmedian(frame["m"]))
    assert np.isfinite(np.asarray(cate.cov)).all()
