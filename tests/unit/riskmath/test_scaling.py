"""PDO scaling and risk tiers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.config import ScoringConfig, Tier
from pipeline.riskmath.scaling import (
    PD_CLIP,
    pd_from_points,
    points,
    scaling_constants,
    tier,
    tier_bounds_points,
    tier_order,
)

CFG = ScoringConfig()  # 600 points at 50:1 good:bad, 20 points to double the odds


def pd_at_odds(odds: float) -> float:
    # odds good:bad = (1 - PD) / PD  ->  PD = 1 / (1 + odds)
    return 1.0 / (1.0 + odds)


def test_base_odds_give_base_score():
    assert points(np.array([pd_at_odds(CFG.base_odds)]), CFG)[0] == pytest.approx(CFG.base_score)


@pytest.mark.parametrize("odds", [1.0, 9.0, 50.0, 400.0])
def test_doubling_the_odds_adds_pdo(odds):
    s = points(np.array([pd_at_odds(odds), pd_at_odds(2 * odds), pd_at_odds(4 * odds)]), CFG)
    np.testing.assert_allclose(np.diff(s), [CFG.pdo, CFG.pdo])


def test_constants_by_hand():
    # factor = 20 / ln 2 = 28.8539; offset = 600 - factor * ln 50 = 600 - 28.8539 * 3.9120
    factor, offset = scaling_constants(CFG)
    assert factor == pytest.approx(20 / math.log(2))
    assert offset == pytest.approx(600 - 20 / math.log(2) * math.log(50))
    # At odds 1:1 (PD 0.5) the score is the offset.
    assert points([0.5], CFG)[0] == pytest.approx(offset)


def test_other_config_and_monotone():
    cfg = ScoringConfig(base_score=500, base_odds=20, pdo=50)
    assert points([pd_at_odds(20)], cfg)[0] == pytest.approx(500)
    assert points([pd_at_odds(40)], cfg)[0] == pytest.approx(550)
    s = points(np.linspace(0.001, 0.999, 50), cfg)
    assert (np.diff(s) < 0).all()  # higher PD, lower score


def test_inverse_round_trips():
    p = np.array([PD_CLIP, 1e-4, 0.01, 0.0314, 0.2, 0.5, 0.9, 1 - PD_CLIP])
    np.testing.assert_allclose(pd_from_points(points(p, CFG), CFG), p, rtol=1e-9)
    s = np.array([300.0, 512.5, 600.0, 777.0])
    np.testing.assert_allclose(points(pd_from_points(s, CFG), CFG), s, rtol=1e-12)


def test_pd_is_clipped_and_nan_passes_through():
    s = points(np.array([0.0, 1.0, np.nan]), CFG)
    assert s[0] == pytest.approx(points([PD_CLIP], CFG)[0])
    assert s[1] == pytest.approx(points([1 - PD_CLIP], CFG)[0])
    assert math.isnan(s[2])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        points([1.5], CFG)


def test_points_keeps_shape():
    p = np.full((3, 2), 0.02)
    assert points(p, CFG).shape == (3, 2)


def test_tier_boundaries_are_inclusive_at_the_top():
    # Tiers A <= 0.01 < B <= 0.03 < C <= 0.08 < D <= 0.20 < E <= 1
    p = np.array([0.0, 0.01, 0.0100001, 0.03, 0.0300001, 0.08, 0.2, 0.2000001, 1.0])
    assert tier(p, CFG).tolist() == ["A", "A", "B", "B", "C", "C", "D", "E", "E"]


def test_tier_custom_config_and_errors():
    cfg = ScoringConfig(tiers=(Tier(name="low", max_pd=0.05), Tier(name="high", max_pd=1.0)))
    assert tier_order(cfg) == ["low", "high"]
    assert tier([0.05, 0.06], cfg).tolist() == ["low", "high"]
    with pytest.raises(ValueError, match="NaN"):
        tier([np.nan], cfg)
    with pytest.raises(ValueError, match=r"PD must be in \[0, 1\], got \[-0.1, -0.1\]"):
        tier([-0.1], cfg)


def test_tier_order_and_bounds_in_points():
    assert tier_order(CFG) == ["A", "B", "C", "D", "E"]
    bounds = tier_bounds_points(CFG)
    assert list(bounds) == ["A", "B", "C", "D", "E"]
    assert list(bounds.values()) == sorted(bounds.values(), reverse=True)
    # The PD at a tier's max_pd scores exactly the tier's lowest score: B ends at PD 3%,
    # odds 97:3, so 600 + 20 / ln 2 * ln((97 / 3) / 50) = 587.4219.
    assert bounds["B"] == pytest.approx(587.4219, abs=1e-4)
    # Tier and score agree: a loan is in A exactly when it scores at least A's lowest score.
    p = np.random.default_rng(1).uniform(0, 0.05, size=2000)
    in_a = tier(p, CFG) == "A"
    assert in_a.any() and (~in_a).any()
    np.testing.assert_array_equal(in_a, points(p, CFG) >= bounds["A"])
