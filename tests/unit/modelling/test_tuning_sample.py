import numpy as np
import pandas as pd
import pytest

from pipeline.modelling.tuning_sample import customer_sample


def _book(customers: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Customers with 1-9 rows each; 10% of them default at their last row."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 10, customers)
    ids = np.repeat(np.arange(customers), sizes)
    bad = rng.random(customers) < 0.1
    last = np.r_[np.diff(ids) != 0, True]
    y = (bad[ids] & last).astype(int)
    return ids, y


def test_the_sample_keeps_customers_whole_and_the_default_rate():
    ids, y = _book()
    rows = customer_sample(ids, y, max_rows=len(ids) // 4, seed=7)
    assert np.all(np.diff(rows) > 0)  # sorted positions, no repeats
    chosen = np.unique(ids[rows])
    # every row of a chosen customer is in, none of the others
    assert np.array_equal(np.flatnonzero(np.isin(ids, chosen)), rows)
    assert len(rows) == pytest.approx(len(ids) / 4, rel=0.1)
    ever = pd.Series(y).groupby(ids).max()
    share_bad = ever.loc[chosen].mean()
    assert share_bad == pytest.approx(ever.mean(), abs=0.005)  # stratified, not by luck
    assert np.array_equal(rows, customer_sample(ids, y, len(ids) // 4, seed=7))
    assert not np.array_equal(rows, customer_sample(ids, y, len(ids) // 4, seed=8))


def test_a_split_no_larger_than_the_limit_is_kept_whole():
    ids, y = _book(50)
    assert np.array_equal(customer_sample(ids, y, len(ids), seed=0), np.arange(len(ids)))


def test_the_final_fit_scales_leaf_sizes_and_stops_on_the_validation_split():
    from pipeline.config.schema import TrainConfig
    from pipeline.modelling import tune

    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(4000, 3)), columns=["a", "b", "c"])
    y = (rng.random(4000) < 1 / (1 + np.exp(-(X["a"] * 2 - 2)))).astype(int)
    cfg = TrainConfig(num_boost_round=400, early_stopping_rounds=10, n_jobs=1)
    params = {**tune.base_params(cfg, 0, None), "min_child_samples": 20, "learning_rate": 0.3}
    booster, used = tune.fit_full(params, (X[:3000], y[:3000]), (X[3000:], y[3000:]), cfg, 1000)
    assert used["min_child_samples"] == 60  # 3000 rows after tuning on 1000: 3x the leaf
    assert params["min_child_samples"] == 20  # the best trial's params are not changed
    assert 1 <= booster.best_iteration < 400  # early stopping chose the rounds
    assert booster.current_iteration() <= booster.best_iteration + cfg.early_stopping_rounds


def test_the_sample_is_taken_only_above_the_limit():
    from types import SimpleNamespace

    from pipeline.modelling.tuning_sample import training_sample

    ids, y = _book(3000)
    train = np.arange(0, len(ids), 2)  # every other row is a training row
    data = SimpleNamespace(
        frame=pd.DataFrame({"customer_id": ids}),
        y=y,
        split=SimpleNamespace(index={"train": train}),
    )
    rows = training_sample(data, 2000, seed=3)
    assert rows is not None and len(rows) == pytest.approx(2000, rel=0.15)
    assert rows.max() < len(train)  # positions within the training split
    assert np.array_equal(rows, training_sample(data, 2000, seed=3))
    assert training_sample(data, None, seed=3) is None
    assert training_sample(data, len(train), seed=3) is None
    without_ids = SimpleNamespace(frame=pd.DataFrame(index=ids), y=y, split=data.split)
    assert training_sample(without_ids, 2000, seed=3) is None


def test_leaf_sizes_scale_with_the_rows_under_either_name():
    from pipeline.modelling.tuning_sample import scale_min_leaf

    params = {"min_data_in_leaf": 250, "num_leaves": 31}
    assert scale_min_leaf(params, 0.2) == {"min_data_in_leaf": 50, "num_leaves": 31}
    assert params["min_data_in_leaf"] == 250  # a copy, not the caller's dict
    assert scale_min_leaf({"min_child_samples": 3}, 0.1) == {"min_child_samples": 1}
    assert scale_min_leaf({"learning_rate": 0.1}, 5.0) == {"learning_rate": 0.1}
