"""The model against its challengers on the same test rows: the plain logistic baseline and the
WOE scorecard a credit team would build, with the AUC lead's interval from resampling customers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.config import Config
from pipeline.modelling.baseline import baseline_pd
from pipeline.modelling.dataset import Dataset
from pipeline.modelling.scorecard import ScorecardResult, fit_scorecard
from pipeline.riskmath import metrics
from pipeline.riskmath.calibration_tests import calibration_in_the_large
from pipeline.riskmath.uncertainty import auc_difference

MODEL = "LightGBM (this run)"
BASELINE = "logistic regression (baseline)"
SCORECARD = "WOE scorecard (optbinning)"


@dataclass(frozen=True)
class Comparison:
    table: pd.DataFrame  # one row per model
    scorecard: ScorecardResult | None

    def auc(self, model: str) -> float | None:
        rows = self.table.loc[self.table["model"] == model, "auc"]
        return float(rows.iloc[0]) if len(rows) else None


def compare(
    cfg: Config,
    data: Dataset,
    y: np.ndarray,
    p: np.ndarray,
    clusters: np.ndarray,
    baseline: np.ndarray | None = None,
) -> Comparison:
    """Columns: model, auc, gini, ks, brier, o_e, calibration (traffic light), lead (the
    model's AUC minus this one's), lead_lower, lead_upper, verdict. `baseline`: the logistic
    baseline's test PDs if train already fitted it (else fitted here)."""
    card = fit_scorecard(data, cfg.scoring, cfg.seed) if cfg.validation.scorecard else None
    others = {BASELINE: baseline_pd(data) if baseline is None else baseline}
    if card is not None:
        others[SCORECARD] = card.pd_test
    rows = [_row(MODEL, y, p)]
    v = cfg.validation
    for name, q in others.items():
        row = _row(name, y, q)
        if v.bootstrap_resamples:
            lead, lo, hi = auc_difference(
                y, p, q, clusters, v.bootstrap_resamples, v.confidence, cfg.seed
            )
            row.update(lead=lead, lead_lower=lo, lead_upper=hi, verdict=_verdict(lo, hi))
        rows.append(row)
    return Comparison(pd.DataFrame(rows), card)


def _row(name: str, y: np.ndarray, p: np.ndarray) -> dict:
    s = metrics.summary(y, p)
    cal = calibration_in_the_large(y, p)
    return {
        "model": name,
        "auc": s["auc"],
        "gini": s["gini"],
        "ks": s["ks"],
        "brier": s["brier"],
        "o_e": cal["o_e"],
        "calibration": cal["light"],
    }


def _verdict(lower: float, upper: float) -> str:
    if lower > 0:
        return "LightGBM ranks better"
    if upper < 0:
        return "the challenger ranks better"
    return "no difference the test split can show"
