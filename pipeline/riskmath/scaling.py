"""Scorecard scaling (points to double the odds, PDO) and risk tiers.

score = offset + factor * ln(odds), odds = (1 - PD) / PD (good:bad),
factor = pdo / ln 2, offset = base_score - factor * ln(base_odds).
So a loan at `base_odds` good:bad scores `base_score`, and each doubling of the odds adds
`pdo` points: higher score = safer. With the defaults (600 points at 50:1, 20 PDO) a PD of
1% scores about 620 and a PD of 20% about 527.

Tiers come from `ScoringConfig.tiers`, ordered best to worst by strictly increasing `max_pd`
(the last is 1.0): a loan falls in the first tier whose `max_pd` >= its PD, i.e. tier i covers
(max_pd[i-1], max_pd[i]], upper bound inclusive; the best tier also takes PD 0.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import expit

from pipeline.config import ScoringConfig

__all__ = [
    "PD_CLIP",
    "pd_from_points",
    "points",
    "scaling_constants",
    "tier",
    "tier_bounds_points",
    "tier_order",
]

# PDs are clipped to [PD_CLIP, 1 - PD_CLIP] before scaling so 0 and 1 map to finite scores
# (about +/- 399 points from the base with the default 20 PDO).
PD_CLIP = 1e-6


def points(pd_array: ArrayLike, cfg: ScoringConfig) -> np.ndarray:
    """Score in points (float64, same shape as `pd_array`) for PDs in [0, 1].

    NaN PDs give NaN scores; a PD outside [0, 1] raises ValueError.
    """
    p = _check_pd(pd_array)
    factor, offset = scaling_constants(cfg)
    q = np.clip(p, PD_CLIP, 1.0 - PD_CLIP)
    # ln((1 - q) / q) written as a difference of logs stays accurate near both ends.
    return offset + factor * (np.log1p(-q) - np.log(q))


def pd_from_points(score: ArrayLike, cfg: ScoringConfig) -> np.ndarray:
    """Inverse of `points`: PD = 1 / (1 + odds), odds = exp((score - offset) / factor).

    Exact inverse for PDs inside [PD_CLIP, 1 - PD_CLIP]; NaN scores give NaN.
    """
    s = np.asarray(score, dtype="float64")
    factor, offset = scaling_constants(cfg)
    return expit(-(s - offset) / factor)


def tier(pd_array: ArrayLike, cfg: ScoringConfig) -> np.ndarray:
    """Tier name for each PD (numpy str array, same shape): the first tier with max_pd >= PD.

    Boundaries are inclusive at the top: with tiers A (0.01) and B (0.03), PD 0.01 is A and
    PD 0.0100001 is B. Raises ValueError for NaN or out-of-range PDs (a tier cannot be guessed).
    """
    p = _check_pd(pd_array)
    if np.isnan(p).any():
        raise ValueError(f"tier: {int(np.isnan(p).sum())} PD values are NaN")
    bounds = np.array([t.max_pd for t in cfg.tiers], dtype="float64")
    names = np.array(tier_order(cfg))
    # side="left": index of the first bound >= PD, so a PD equal to a bound stays in that tier.
    return names[np.searchsorted(bounds, p, side="left")]


def tier_order(cfg: ScoringConfig) -> list[str]:
    """Tier names from best (lowest PD) to worst."""
    return [t.name for t in cfg.tiers]


def tier_bounds_points(cfg: ScoringConfig) -> dict[str, float]:
    """Lowest score of each tier (points at its max_pd), best tier first; the worst tier,
    whose max_pd is 1, gets the score of PD 1 - PD_CLIP."""
    return {t.name: float(points(np.array([t.max_pd]), cfg)[0]) for t in cfg.tiers}


def scaling_constants(cfg: ScoringConfig) -> tuple[float, float]:
    """(factor, offset): factor = pdo / ln 2 points per unit of ln odds, offset = the score
    at odds 1:1."""
    factor = cfg.pdo / math.log(2.0)
    offset = cfg.base_score - factor * math.log(cfg.base_odds)
    return factor, offset


def _check_pd(pd_array: ArrayLike) -> np.ndarray:
    p = np.asarray(pd_array, dtype="float64")
    finite = p[~np.isnan(p)]
    if finite.size and (finite.min() < 0 or finite.max() > 1):
        raise ValueError(f"PD must be in [0, 1], got [{finite.min()}, {finite.max()}]")
    return p
