"""Monotone constraints: along a constrained feature the PD moves one way only, others fixed."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.config import TrainConfig
from pipeline.modelling.tune import base_params, fit


def _data(n: int = 4000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "late_instalments": rng.poisson(1.0, n).astype(float),
            "satisfaction": rng.normal(0, 1, n),
            "noise": rng.normal(0, 1, n),
        }
    )
    # The truth is not monotone in satisfaction (a bump), so a free model would wiggle.
    eta = (
        -3
        + 0.6 * X["late_instalments"]
        - 0.5 * X["satisfaction"]
        + 1.2 * (X["satisfaction"].abs() < 0.3)
    )
    y = (rng.random(n) < 1 / (1 + np.exp(-eta))).astype(int)
    return X, y.to_numpy()


def _grid_predictions(booster, X: pd.DataFrame, feature: str) -> np.ndarray:
    """(rows, grid) PDs of 50 rows with `feature` swept over its range, the rest fixed."""
    grid = np.linspace(X[feature].min(), X[feature].max(), 40)
    rows = X.sample(50, random_state=1)
    out = []
    for _, row in rows.iterrows():
        sweep = pd.DataFrame([row] * len(grid))
        sweep[feature] = grid
        out.append(booster.predict(sweep))
    return np.array(out)


def test_constrained_features_never_reverse_and_the_free_model_does() -> None:
    X, y = _data()
    cfg = TrainConfig(n_jobs=1)
    params = {
        **base_params(cfg, seed=3, monotone=[1, -1, 0]),
        "num_leaves": 15,
        "min_child_samples": 20,
        "learning_rate": 0.1,
    }
    booster = fit(params, (X, y), rounds=150)
    up = np.diff(_grid_predictions(booster, X, "late_instalments"), axis=1)
    down = np.diff(_grid_predictions(booster, X, "satisfaction"), axis=1)
    assert (up >= -1e-12).all()
    assert (down <= 1e-12).all()
    assert up.max() > 0 and down.min() < 0  # the constrained features are used

    free = {k: v for k, v in params.items() if not k.startswith("monotone")}
    wiggly = np.diff(_grid_predictions(fit(free, (X, y), rounds=150), X, "satisfaction"), axis=1)
    assert (wiggly > 1e-6).any()  # without the constraint the bump shows: the test can fail
