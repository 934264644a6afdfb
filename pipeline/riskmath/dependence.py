"""How a model's output depends on one feature, from its SHAP values: direction, turn, PD points.

Pure functions on arrays (no model, no I/O): the explain stage reads them per feature, the
simulated book's truth checks read them per planted effect.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import expit

from pipeline.core.metadata import FeatureSpec

# A dependence whose SHAP rank correlation is weaker than this has no clear direction.
MIN_DIRECTION_CORR = 0.05

# A turn counts when the inner extreme of the binned dependence stands out from both ends by
# this share of its range (smaller wiggles are noise of the bins).
TURN_SHARE = 0.25


def pd_points(mean_abs_shap: np.ndarray, center_log_odds: float) -> np.ndarray:
    """PD percentage points of a log-odds push of size `mean_abs_shap` at a loan whose log-odds
    are `center_log_odds`: (PD(center + a) - PD(center - a)) / 2 * 100. Symmetric in the sign
    of the push, and for small a about 100 * a * p * (1 - p)."""
    a = np.asarray(mean_abs_shap, dtype=float)
    return 100 * (expit(center_log_odds + a) - expit(center_log_odds - a)) / 2


@dataclass(frozen=True)
class Dependence:
    direction: str  # lowers | raises | none | n/a (categorical)
    corr: float  # Spearman of feature value vs its SHAP value
    turns: bool
    turn_at: float  # feature value at the inner extreme of the binned dependence (NaN if none)
    note: str  # plain words, e.g. "turns at 2.0 contacts a month: up to there more of it ..."


def dependence(x: pd.Series, s: np.ndarray, spec: FeatureSpec | None = None) -> Dependence:
    """Sign of the dependence (Spearman correlation of the feature with its SHAP value) and
    where it turns, if it does."""
    if spec is not None and spec.kind == "categorical":
        return Dependence("n/a", float("nan"), False, float("nan"), "categorical")
    v = pd.to_numeric(x, errors="coerce").to_numpy(dtype=float)
    s = np.asarray(s, dtype=float)
    ok = np.isfinite(v)
    if ok.sum() < 10 or np.nanstd(v[ok]) == 0:
        return Dependence("none", float("nan"), False, float("nan"), "constant or too few values")
    corr = float(pd.Series(v[ok]).rank().corr(pd.Series(s[ok]).rank()))
    if not np.isfinite(corr) or abs(corr) < MIN_DIRECTION_CORR:
        direction = "none"
    else:
        direction = "raises" if corr > 0 else "lowers"
    shape, at = _turn(v[ok], s[ok])
    fmt = spec.readable if spec is not None else (lambda value: f"{value:g}")
    if shape == "valley":
        note = f"turns at {fmt(at)}: up to there more of it lowers PD, beyond it raises PD"
    elif shape == "peak":
        note = f"turns at {fmt(at)}: up to there more of it raises PD, beyond it lowers PD"
    elif direction == "none":
        note = "no clear direction"
    else:
        note = f"monotone: more of it {direction} PD"
    return Dependence(direction, corr, shape is not None, at, note)


def binned_dependence(v: np.ndarray, s: np.ndarray, bins: int = 10) -> pd.DataFrame:
    """Mean SHAP value per quantile bin of the feature (distinct values when there are few)."""
    df = pd.DataFrame({"v": v, "s": s})
    if df["v"].nunique() <= bins:
        g = df.groupby("v")
    else:
        g = df.groupby(pd.qcut(df["v"], bins, duplicates="drop"), observed=True)
    out = g.agg(value=("v", "mean"), mean_shap=("s", "mean"), n=("s", "size"))
    return out.reset_index(drop=True)


def agrees(direction: str, expected: str) -> bool | None:
    if expected == "unknown" or direction in ("n/a", "none"):
        return None
    return direction == expected


def _turn(v: np.ndarray, s: np.ndarray, bins: int = 10) -> tuple[str | None, float]:
    """("valley" | "peak" | None, feature value at the turn): whether the binned dependence goes
    down and then up (or up then down) materially, and at which bin's mean value."""
    curve = binned_dependence(v, s, bins)
    if len(curve) < 3:
        return None, float("nan")
    y = curve["mean_shap"].to_numpy()
    spread = y.max() - y.min()
    if spread <= 0:
        return None, float("nan")
    lo, hi = int(np.argmin(y)), int(np.argmax(y))
    inner_min = 0 < lo < len(y) - 1 and min(y[0], y[-1]) - y[lo] > TURN_SHARE * spread
    inner_max = 0 < hi < len(y) - 1 and y[hi] - max(y[0], y[-1]) > TURN_SHARE * spread
    if inner_min and (not inner_max or min(y[0], y[-1]) - y[lo] >= y[hi] - max(y[0], y[-1])):
        return "valley", float(curve["value"].iloc[lo])
    if inner_max:
        return "peak", float(curve["value"].iloc[hi])
    return None, float("nan")
