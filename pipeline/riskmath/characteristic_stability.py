"""Characteristic stability (CSI): how much each feature's contribution to the score moved.

PSI says a feature's distribution moved; CSI says whether that moved the score. For a points
scorecard the usual CSI of a characteristic is sum over its bins of (actual share - expected
share) x bin points: the mean points the characteristic adds now minus what it added on the
development sample. The tree model's analogue uses each row's exact contribution (tree SHAP,
log-odds): the CSI of a feature is the mean contribution on the actual sample minus the mean on
the expected one. The shifts of all features add up to the shift of the mean raw log-odds, so a
reader sees which features drive a score drift and which moved without effect.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def csi_frame(
    expected: pd.DataFrame, actual: pd.DataFrame, points_per_log_odds: float
) -> pd.DataFrame:
    """Per feature (the shared columns of two (rows, features) frames of log-odds contributions),
    largest absolute shift first, ties by name. Columns: feature, mean_expected, mean_actual,
    shift_log_odds (actual - expected; positive raises PD), shift_points (the same in score
    points, positive = safer: -points_per_log_odds x shift_log_odds, before calibration) and
    share_of_shift (the feature's share of the summed absolute shifts).
    """
    if expected.empty or actual.empty:
        raise ValueError("csi_frame: both samples need rows")
    missing = [c for c in expected.columns if c not in actual.columns]
    if missing:
        raise ValueError(f"csi_frame: the actual sample lacks {', '.join(missing)}")
    mean_e = expected.mean(axis=0).astype("float64")
    mean_a = actual[list(expected.columns)].mean(axis=0).astype("float64")
    shift = mean_a - mean_e
    total = float(np.abs(shift).sum())
    out = pd.DataFrame(
        {
            "feature": list(expected.columns),
            "mean_expected": mean_e.to_numpy(),
            "mean_actual": mean_a.to_numpy(),
            "shift_log_odds": shift.to_numpy(),
            "shift_points": -points_per_log_odds * shift.to_numpy(),
            "share_of_shift": (np.abs(shift) / total).to_numpy() if total > 0 else 0.0,
        }
    )
    order = np.lexsort((out["feature"].to_numpy(), -np.abs(out["shift_log_odds"].to_numpy())))
    return out.iloc[order].reset_index(drop=True)
