"""Calibration: fitted maps improve Brier on a mis-calibrated model, stay monotone, round-trip."""

from __future__ import annotations

import json

import numpy as np
import pytest

from pipeline.core.errors import DataError
from pipeline.modelling.calibration import Calibrator, fit_calibrator


@pytest.fixture(scope="module")
def miscalibrated() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validation and fresh test rows whose raw PD is sqrt(true PD): far too high."""
    rng = np.random.default_rng(7)
    p_true = rng.beta(1.2, 12, size=8000)
    y = (rng.random(p_true.size) < p_true).astype(int)
    p_raw = np.sqrt(p_true)
    return y[:4000], p_raw[:4000], y[4000:], p_raw[4000:]


def _brier(y: np.ndarray, p: np.ndarray) -> float:
    return float(np.mean((p - y) ** 2))


@pytest.mark.parametrize("method", ["isotonic", "platt", "auto"])
def test_calibration_improves_brier_out_of_sample(miscalibrated, method):
    y_val, p_val, y_test, p_test = miscalibrated
    cal, briers = fit_calibrator(y_val, p_val, method=method)
    assert briers["calibrated"] < briers["raw"]
    assert all(isinstance(v, float) for v in briers.values())  # loggable as MLflow metrics
    # the gain holds on rows the calibrator never saw
    assert _brier(y_test, cal.apply(p_test)) < 0.9 * _brier(y_test, p_test)
    assert cal.method == method or (method == "auto" and cal.method in ("platt", "isotonic"))


def test_auto_reports_every_candidate_and_picks_the_lowest(miscalibrated):
    y_val, p_val, _, _ = miscalibrated
    cal, briers = fit_calibrator(y_val, p_val, method="auto")
    assert set(briers) == {"raw", "calibrated", "cv_none", "cv_platt", "cv_isotonic"}
    cv = {m: briers[f"cv_{m}"] for m in ("none", "platt", "isotonic")}
    assert cal.method == min(cv, key=cv.get)
    assert cv["none"] > min(cv["platt"], cv["isotonic"])


def test_auto_does_not_hurt_an_already_calibrated_model():
    rng = np.random.default_rng(3)
    p = rng.beta(1.2, 12, size=12000)
    y = (rng.random(p.size) < p).astype(int)
    cal, briers = fit_calibrator(y[:6000], p[:6000], method="auto")
    assert briers[f"cv_{cal.method}"] <= briers["cv_none"]
    # on fresh rows the chosen map costs at most 1% Brier against the (already right) raw PD
    assert _brier(y[6000:], cal.apply(p[6000:])) <= 1.01 * _brier(y[6000:], p[6000:])


@pytest.mark.parametrize("method", ["isotonic", "platt", "none"])
def test_output_monotone_and_inside_unit_interval(miscalibrated, method):
    y_val, p_val, _, _ = miscalibrated
    cal, _ = fit_calibrator(y_val, p_val, method=method)
    grid = np.linspace(0, 1, 2001)
    out = cal.apply(grid)
    assert np.all(np.diff(out) >= 0)
    assert out.min() > 0 and out.max() < 1


@pytest.mark.parametrize("method", ["isotonic", "platt", "none"])
def test_json_round_trip_is_identical(miscalibrated, method):
    y_val, p_val, _, _ = miscalibrated
    cal, _ = fit_calibrator(y_val, p_val, method=method)
    back = Calibrator.from_dict(json.loads(json.dumps(cal.to_dict())))
    assert back == cal
    probe = np.random.default_rng(0).random(500)
    np.testing.assert_array_equal(back.apply(probe), cal.apply(probe))


def test_isotonic_matches_sklearn_predict(miscalibrated):
    from sklearn.isotonic import IsotonicRegression

    y_val, p_val, _, p_test = miscalibrated
    cal, _ = fit_calibrator(y_val, p_val, method="isotonic")
    iso = IsotonicRegression(y_min=0, y_max=1, out_of_bounds="clip").fit(p_val, y_val)
    np.testing.assert_allclose(cal.apply(p_test), np.clip(iso.predict(p_test), 1e-6, 1 - 1e-6))


def test_platt_recovers_a_known_distortion():
    # raw = sigmoid(0.5 * true logit - 1) => Platt should find a ~2, b ~2
    rng = np.random.default_rng(11)
    z = rng.normal(-2.5, 1.2, size=20000)
    y = (rng.random(z.size) < 1 / (1 + np.exp(-z))).astype(int)
    p_raw = 1 / (1 + np.exp(-(0.5 * z - 1)))
    cal, _ = fit_calibrator(y, p_raw, method="platt")
    assert cal.params["a"] == pytest.approx(2.0, abs=0.15)
    assert cal.params["b"] == pytest.approx(2.0, abs=0.3)


def test_single_class_labels_are_a_data_error():
    with pytest.raises(DataError, match="both defaults and non-defaults"):
        fit_calibrator(np.zeros(50), np.full(50, 0.1))


def test_bad_method_and_shapes_rejected():
    with pytest.raises(ValueError, match="calibration method"):
        fit_calibrator(np.array([0, 1]), np.array([0.2, 0.4]), method="beta")
    with pytest.raises(ValueError, match="p_raw"):
        fit_calibrator(np.array([0, 1, 1]), np.array([0.2, 0.4]))
    with pytest.raises(ValueError, match="unknown calibration method"):
        Calibrator.from_dict({"method": "spline", "params": {}})
