from types import SimpleNamespace

import lightgbm as lgb
import numpy as np
import pandas as pd

from pipeline.modelling.protected_cost import protected_auc


def _data(customers: int = 1500, seed: int = 0):
    """Three rows per customer; the first two thirds of the customers train, the rest test."""
    rng = np.random.default_rng(seed)
    ids = np.repeat(np.arange(customers), 3)
    x = rng.normal(size=len(ids))
    age = rng.integers(20, 70, customers)[ids]
    y = (rng.random(len(ids)) < 1 / (1 + np.exp(-(2 * x - 2.5)))).astype(int)
    frame = pd.DataFrame({"customer_id": ids, "x": x, "customer_age_years": age})
    cut = 2 * len(ids) // 3
    split = SimpleNamespace(index={"train": np.arange(cut), "test": np.arange(cut, len(ids))})
    return SimpleNamespace(
        specs=[SimpleNamespace(name="x")],
        frame=frame,
        y=y,
        split=split,
        X=lambda: frame[["x"]],
    )


def test_the_refit_pair_uses_a_customer_sample_when_the_split_is_larger(monkeypatch):
    data = _data()
    params = {"objective": "binary", "num_threads": 1, "verbose": -1, "min_data_in_leaf": 60}
    booster = lgb.train(params, lgb.Dataset(data.frame[["x"]], data.y), num_boost_round=20)
    whole = protected_auc(booster, data, ("customer_age_years",), seed=1)
    assert whole["train_rows"] == 3000 and whole["attributes"] == 1
    assert 0.5 < whole["without"] <= 1 and 0.5 < whole["with"] <= 1

    from pipeline.modelling import protected_cost

    seen = []
    real_train = protected_cost.lgb.train

    def spy(params, data_, *args, **kwargs):
        seen.append((params["min_data_in_leaf"], data_.data.shape[0]))
        return real_train(params, data_, *args, **kwargs)

    monkeypatch.setattr(protected_cost.lgb, "train", spy)
    sampled = protected_auc(booster, data, ("customer_age_years",), seed=1, max_rows=1000)
    rows = sampled["train_rows"]
    assert 900 <= rows <= 1100 and rows % 3 == 0  # whole customers, about 1,000 rows
    # both refits on the same sample, their leaves a third as large as the booster's
    assert seen == [(round(60 * rows / 3000), rows)] * 2
    assert protected_auc(booster, data, ("customer_age_years",), 1, max_rows=1000) == sampled
