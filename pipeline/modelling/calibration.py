"""Probability calibration: map the booster's raw PD onto observed default rates.

The fitted calibrator is stored as plain numbers (JSON) with the model, so scoring needs neither
scikit-learn objects nor pickles: isotonic as threshold arrays applied with `np.interp`, Platt as
two coefficients on the logit of the raw PD.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from pipeline.core.errors import DataError

Method = Literal["isotonic", "platt", "none"]
METHODS: tuple[Method, ...] = ("none", "platt", "isotonic")  # simplest first: it wins ties

# Calibrated PDs are kept inside (EPS, 1 - EPS): an isotonic step at exactly 0 or 1 would give
# infinite log-odds and so infinite score points.
EPS = 1e-6
CV_FOLDS = 5


@dataclass(frozen=True)
class Calibrator:
    """A fitted monotone map p_raw -> p.

    params: isotonic {"x": [...], "y": [...]} (increasing thresholds), platt {"a": .., "b": ..}
        with p = sigmoid(a * logit(p_raw) + b), none {}.
    """

    method: Method = "none"
    params: dict[str, Any] = field(default_factory=dict)

    def apply(self, p_raw: np.ndarray) -> np.ndarray:
        """Calibrated PD, shape of `p_raw` (n,), values in (0, 1)."""
        p_raw = np.asarray(p_raw, dtype=float)
        if self.method == "isotonic":
            p = np.interp(p_raw, self.params["x"], self.params["y"])
        elif self.method == "platt":
            z = self.params["a"] * _logit(p_raw) + self.params["b"]
            p = 1.0 / (1.0 + np.exp(-z))
        elif self.method == "none":
            p = p_raw
        else:
            raise ValueError(f"unknown calibration method {self.method!r}")
        return np.clip(p, EPS, 1.0 - EPS)

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "params": self.params}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Calibrator:
        if d.get("method") not in METHODS:
            raise ValueError(f"unknown calibration method {d.get('method')!r}")
        return cls(method=d["method"], params=dict(d.get("params") or {}))


def fit_calibrator(
    y: np.ndarray, p_raw: np.ndarray, method: str = "auto"
) -> tuple[Calibrator, dict[str, float]]:
    """Fit a calibrator on held-out data (the validation split), never on the training rows.

    y: (n,) 0/1 outcomes; p_raw: (n,) uncalibrated PDs of the same rows.
    'auto' compares none / platt / isotonic by their Brier score in a 5-fold cross-validation
    on the data given (isotonic always wins in-sample, being the least-squares monotone fit, so
    an in-sample comparison would choose nothing), then refits the winner on all rows.
    Returns the calibrator and its Brier scores, all floats (ready for mlflow.log_metrics):
    raw (uncalibrated), calibrated (after the fitted map, in-sample) and, for 'auto',
    cv_none / cv_platt / cv_isotonic (out-of-fold, the basis of the choice).
    """
    y, p_raw = _check_inputs(y, p_raw)
    if method not in ("auto", *METHODS):
        raise ValueError(f"calibration method must be auto, {', '.join(METHODS)}; got {method!r}")
    briers: dict[str, float] = {"raw": _brier(y, p_raw)}
    if method == "auto":
        cv = {m: _cv_brier(y, p_raw, m) for m in METHODS}
        briers.update({f"cv_{m}": v for m, v in cv.items()})
        method = min(METHODS, key=lambda m: cv[m])  # min keeps the first (simplest) on a tie
    cal = _fit(y, p_raw, method)
    briers["calibrated"] = _brier(y, cal.apply(p_raw))
    return cal, briers


def _fit(y: np.ndarray, p_raw: np.ndarray, method: str) -> Calibrator:
    if method == "none":
        return Calibrator("none", {})
    if method == "platt":
        from sklearn.linear_model import LogisticRegression

        # C=inf: plain maximum likelihood; the two parameters need no shrinkage.
        lr = LogisticRegression(C=np.inf).fit(_logit(p_raw).reshape(-1, 1), y)
        return Calibrator("platt", {"a": float(lr.coef_[0, 0]), "b": float(lr.intercept_[0])})
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(p_raw, y)
    # np.interp clips outside the thresholds and interpolates linearly between them, which is
    # exactly IsotonicRegression.predict with out_of_bounds="clip".
    return Calibrator(
        "isotonic",
        {"x": iso.X_thresholds_.astype(float).tolist(), "y": iso.y_thresholds_.tolist()},
    )


def _cv_brier(y: np.ndarray, p_raw: np.ndarray, method: str) -> float:
    """Out-of-fold Brier score of `method` (stratified folds, fixed seed)."""
    from sklearn.model_selection import StratifiedKFold

    folds = min(CV_FOLDS, int(y.sum()), int(len(y) - y.sum()))
    if folds < 2:  # too few events to hold any out: compare in-sample
        return _brier(y, _fit(y, p_raw, method).apply(p_raw))
    out = np.empty_like(p_raw)
    for fit_idx, hold_idx in StratifiedKFold(folds, shuffle=True, random_state=0).split(p_raw, y):
        out[hold_idx] = _fit(y[fit_idx], p_raw[fit_idx], method).apply(p_raw[hold_idx])
    return _brier(y, out)


def _check_inputs(y: np.ndarray, p_raw: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=float).ravel()
    p_raw = np.asarray(p_raw, dtype=float).ravel()
    if y.shape != p_raw.shape:
        raise ValueError(f"y has {len(y)} values, p_raw {len(p_raw)}")
    if not np.isin(y, (0.0, 1.0)).all():
        raise DataError("calibration labels must be 0/1 without missing values")
    if not ((p_raw >= 0) & (p_raw <= 1)).all():
        raise ValueError("p_raw must be probabilities in [0, 1] without missing values")
    if y.min() == y.max():
        raise DataError(
            f"calibration needs both defaults and non-defaults; all {len(y)} labels are {y[0]:.0f}"
        )
    return y, p_raw


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, EPS, 1.0 - EPS)
    return np.log(p) - np.log1p(-p)


def _brier(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean((p - y) ** 2))
