"""The WOE scorecard challenger: points follow the risk in every characteristic, collinear
characteristics are not both taken, and it ranks."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from pipeline.config import ScoringConfig
from pipeline.core.metadata import FeatureSpec
from pipeline.modelling.dataset import Dataset
from pipeline.modelling.scorecard import fit_scorecard
from pipeline.modelling.split import Split


def _data(n: int = 6000, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    arrears = rng.gamma(1.0, 10.0, n)
    noise = rng.normal(size=n)
    region = rng.choice(["north", "south", "east"], n)
    z = -3.5 + 0.06 * arrears + np.where(region == "south", 0.8, 0.0)
    y = (rng.random(n) < 1 / (1 + np.exp(-z))).astype(np.int8)
    frame = pd.DataFrame(
        {
            "label": y,
            "arrears_3m": arrears,
            # the same behaviour over a longer window: nearly the same information
            "arrears_6m": arrears * 1.02 + rng.normal(0, 0.5, n),
            "noise": noise,
            "region": region,
        }
    )
    specs = [
        FeatureSpec(
            name=c,
            family="repayment",
            description=c,
            kind="categorical" if c == "region" else "numeric",
        )
        for c in ("arrears_3m", "arrears_6m", "noise", "region")
    ]
    idx = np.arange(n)
    parts = {"train": idx[: n // 2], "valid": idx[n // 2 : 3 * n // 4], "test": idx[3 * n // 4 :]}
    split = Split(parts, "random", {})
    return Dataset(frame, specs, split, "row", None, {"region": ["east", "north", "south"]})


def test_scorecard_takes_one_of_two_collinear_characteristics_and_ranks():
    data = _data(n=20_000)  # enough rows that pure noise stays under the IV floor
    card = fit_scorecard(data, ScoringConfig(), seed=0)
    chosen = card.iv.loc[card.iv["selected"], "feature"].tolist()
    assert "region" in chosen and "noise" not in chosen
    assert sum(c in chosen for c in ("arrears_3m", "arrears_6m")) == 1
    y_test = data.y[data.split.index["test"]]
    assert roc_auc_score(y_test, card.pd_test) > 0.67  # the true PD ranks at about 0.70
    assert set(card.points["Variable"]) == set(chosen)


def test_points_fall_as_the_risk_of_a_bin_rises():
    card = fit_scorecard(_data(seed=1), ScoringConfig(), seed=0)
    bins = card.points[~card.points["Bin"].isin(["Special", "Missing"])]
    bins = bins[bins["Count"] > 0]
    for name, rows in bins.groupby("Variable"):
        order = rows.sort_values("Event rate")
        assert order["Points"].is_monotonic_decreasing, name
