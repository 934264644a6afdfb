"""SHAP attribution summarised: per feature and family, in log-odds and PD points.

`explain` turns a model's SHAP values (LightGBM `pred_contrib`, the numbers `shap.TreeExplainer`
gives) into the tables the explain stage writes: mean |SHAP|, share, PD points at a typical
loan, direction and turn of each feature; `add_stability` adds how often refits agree on each
direction. Pure: no model loading, no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy.special import expit

from pipeline.core.metadata import FeatureSpec, specs_for_contributions
from pipeline.riskmath.dependence import agrees, dependence, pd_points


@dataclass
class Explanation:
    shap: np.ndarray  # n x features, log-odds
    base_value: float
    X: pd.DataFrame
    importance: pd.DataFrame  # one row per feature
    families: pd.DataFrame
    median_log_odds: float = 0.0  # the typical loan the PD points refer to
    specs: list[FeatureSpec] = field(default_factory=list)  # in the order of X.columns
    truth: pd.DataFrame | None = None  # planted vs found (the simulated book's truth checks)

    @property
    def median_pd(self) -> float:
        return float(expit(self.median_log_odds))

    @property
    def relationship(self) -> pd.DataFrame:
        return self.importance[self.importance["family"] == "relationship"].reset_index(drop=True)


def explain(
    contribs: np.ndarray,
    X: pd.DataFrame,
    specs: list[FeatureSpec],
    constrained: frozenset[str] = frozenset(),
) -> Explanation:
    """Summaries of SHAP values `contribs` (n x (features + 1), last column the bias), columns
    in the order of `X.columns`; `specs` give family, expected direction and labels;
    `constrained` names the features the model was trained monotone in."""
    contribs, specs = specs_for_contributions(contribs, X, specs)
    shap_values = contribs[:, :-1]
    base = float(contribs[:, -1].mean())
    median_lo = float(np.median(contribs.sum(axis=1))) if len(contribs) else 0.0
    mean_abs = np.abs(shap_values).mean(axis=0)
    total = mean_abs.sum() or 1.0
    points = pd_points(mean_abs, median_lo)
    rows = []
    for j, s in enumerate(specs):
        d = dependence(X[s.name], shap_values[:, j], s)
        rows.append(
            {
                "feature": s.name,
                "family": s.family,
                "description": s.description,
                "mean_abs_shap": float(mean_abs[j]),
                "share": float(mean_abs[j] / total),
                "pd_points": float(points[j]),
                "direction": d.direction,
                "rank_corr": d.corr,
                "turns": d.turns,
                "turn_at": d.turn_at,
                "monotonicity": d.note,
                "expected": s.expected,
                "agrees": agrees(d.direction, s.expected),
                "constrained": s.name in constrained,
            }
        )
    imp = pd.DataFrame(rows).sort_values("mean_abs_shap", ascending=False, ignore_index=True)
    imp.insert(0, "rank", np.arange(1, len(imp) + 1))
    fam = (
        imp.groupby("family", as_index=False)
        .agg(
            mean_abs_shap=("mean_abs_shap", "sum"),
            share=("share", "sum"),
            n_features=("feature", "size"),
        )
        .sort_values("mean_abs_shap", ascending=False, ignore_index=True)
    )
    fam["pd_points"] = pd_points(fam["mean_abs_shap"].to_numpy(), median_lo)
    return Explanation(shap_values, base, X, imp, fam, median_lo, specs)


def add_stability(ex: Explanation, rows: np.ndarray, refits: list[np.ndarray]) -> None:
    """Adds `stable_share` to the importance table: the share of refits (SHAP values on
    `ex.X.iloc[rows]`, columns as `ex.specs`) whose direction for a feature is the one this
    model gives on the same rows."""
    X = ex.X.iloc[rows]
    main = [dependence(X[s.name], ex.shap[rows, j], s).direction for j, s in enumerate(ex.specs)]
    agree = np.zeros(len(ex.specs))
    for contribs in refits:
        for j, spec in enumerate(ex.specs):
            agree[j] += dependence(X[spec.name], contribs[:, j], spec).direction == main[j]
    share = dict(zip([s.name for s in ex.specs], agree / max(len(refits), 1), strict=True))
    ex.importance["stable_share"] = ex.importance["feature"].map(share)
